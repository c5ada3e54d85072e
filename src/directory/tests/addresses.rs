//! Address uniqueness, aliases, primary changes and identifier resolution.

use super::*;

#[test]
fn addresses_are_unique_across_kinds_and_case() {
    let f = fixture();
    let d = &f.dir;
    let u = f.user("bob");
    let g = d.create_group(&f.org, "team", false).expect("group");
    let r = d
        .create_resource(
            &f.org,
            NewResource {
                name: "room",
                resource_type: ResourceType::Room,
                description: Some("Big room"),
                hidden_from_gal: false,
            },
        )
        .expect("resource");
    assert_eq!(
        code(d.register_to_workmail(&f.org, &g, "BOB@example.test")),
        "EmailAddressInUseException"
    );
    assert_eq!(
        code(d.register_to_workmail(&f.org, &r, "bob@EXAMPLE.test")),
        "EmailAddressInUseException"
    );
    assert_eq!(code(d.create_alias(&f.org, &u, "Bobby@example.test")), "ok");
    assert_eq!(
        code(d.register_to_workmail(&f.org, &g, "bobby@example.test")),
        "EmailAddressInUseException"
    );
    assert_eq!(
        code(d.register_to_workmail(&f.org, &g, "team@example.test")),
        "ok"
    );
    assert_eq!(
        code(d.register_to_workmail(&f.org, &r, "room@example.test")),
        "ok"
    );
    assert_eq!(
        code(d.create_alias(&f.org, &r, "BOBBY@example.test")),
        "EmailAddressInUseException"
    );
    assert_eq!(
        code(d.create_alias(&f.org, &u, "team@example.test")),
        "EmailAddressInUseException"
    );
    assert_eq!(
        code(d.create_alias(&f.org, &u, "bob@example.test")),
        "EmailAddressInUseException",
        "own primary"
    );
    assert_eq!(
        code(d.create_alias(&f.org, &u, "bobby@example.test")),
        "ok",
        "own alias: no-op"
    );
    assert_eq!(
        code(d.create_alias(&f.org, &g, "team-alias@example.test")),
        "ok"
    );
    assert_eq!(
        code(d.create_alias(&f.org, &r, "room-alias@example.test")),
        "ok"
    );
    assert_eq!(
        code(d.create_alias(&f.org, &u, "not an address")),
        "InvalidParameterException"
    );

    // Every address resolves to its owner, whatever the case.
    for (addr, id) in [
        ("BOB@example.test", &u),
        ("bobby@Example.Test", &u),
        ("team@example.test", &g),
        ("TEAM-ALIAS@example.test", &g),
        ("room-alias@example.test", &r),
    ] {
        let got = match d.resolve_address(addr) {
            Some(
                Recipient::User { id, .. }
                | Recipient::Group { id, .. }
                | Recipient::Resource { id, .. },
            ) => id,
            None => String::new(),
        };
        assert_eq!(&got, id, "{addr}");
    }
}

#[test]
fn alias_rules() {
    let f = fixture();
    let d = &f.dir;
    let u = f.new_user("hank");
    assert_eq!(
        code(d.create_alias(&f.org, &u, "h@example.test")),
        "EntityStateException",
        "not registered"
    );
    d.register_to_workmail(&f.org, &u, "hank@example.test")
        .expect("register");
    for i in 0..100 {
        assert_eq!(
            code(d.create_alias(&f.org, &u, &format!("h{i}@example.test"))),
            "ok"
        );
    }
    assert_eq!(
        code(d.create_alias(&f.org, &u, "h100@example.test")),
        "LimitExceededException"
    );
    assert_eq!(
        code(d.update_primary_email_address(&f.org, &u, "fresh@example.test")),
        "LimitExceededException",
        "the old primary would be alias 101"
    );
    assert_eq!(
        code(d.delete_alias(&f.org, &u, "hank@example.test")),
        "InvalidParameterException"
    );
    assert_eq!(code(d.delete_alias(&f.org, &u, "h0@example.test")), "ok");
    assert_eq!(
        code(d.delete_alias(&f.org, &u, "h0@example.test")),
        "ok",
        "absent: no-op"
    );
    assert_eq!(d.resolve_address("h0@example.test"), None);
    let aliases = d.list_aliases(&f.org, &u).expect("list");
    assert_eq!(aliases.len(), 99);
    assert!(aliases.windows(2).all(|w| w[0] < w[1]), "sorted");
}

#[test]
fn update_primary_email_address_swaps_and_moves() {
    let f = fixture();
    let d = &f.dir;
    let u = f.user("ivy");
    d.create_alias(&f.org, &u, "ivy.alias@example.test")
        .expect("alias");
    assert_eq!(
        code(d.update_primary_email_address(&f.org, &u, "IVY.ALIAS@example.test")),
        "ok"
    );
    let b = d.describe_user(&f.org, &u).expect("describe").base;
    assert_eq!(b.email.as_deref(), Some("ivy.alias@example.test"));
    assert_eq!(b.aliases, vec!["ivy@example.test".to_string()]);
    assert_eq!(
        code(d.update_primary_email_address(&f.org, &u, "ivy2@example.test")),
        "ok"
    );
    let b = d.describe_user(&f.org, &u).expect("describe").base;
    assert_eq!(b.email.as_deref(), Some("ivy2@example.test"));
    assert_eq!(
        b.aliases,
        vec![
            "ivy.alias@example.test".to_string(),
            "ivy@example.test".to_string()
        ]
    );
    for a in [
        "ivy@example.test",
        "ivy.alias@example.test",
        "ivy2@example.test",
    ] {
        assert!(d.resolve_address(a).is_some(), "{a}");
    }
    let other = f.user("jim");
    assert_eq!(
        code(d.update_primary_email_address(&f.org, &other, "ivy@example.test")),
        "EmailAddressInUseException"
    );
    assert_eq!(
        code(d.update_primary_email_address(&f.org, &other, "jim@elsewhere.test")),
        "MailDomainNotFoundException"
    );
    d.deregister_from_workmail(&f.org, &other).expect("disable");
    assert_eq!(
        code(d.update_primary_email_address(&f.org, &other, "jim2@example.test")),
        "EntityStateException"
    );
}

#[test]
fn identifiers_resolve_by_id_name_or_email() {
    let f = fixture();
    let d = &f.dir;
    let u = f.user("kim");
    let g = f.group("kim-group");
    for ident in [
        u.as_str(),
        &u.to_uppercase(),
        "kim",
        "KIM",
        "kim@example.test",
        "Kim@Example.Test",
    ] {
        let s = d.resolve_identifier(&f.org, ident, ANY_KIND).expect(ident);
        assert_eq!(
            (s.id.as_str(), s.kind, s.name.as_str()),
            (u.as_str(), EntityKind::User, "kim"),
            "{ident}"
        );
    }
    // Wrong kind: not found.
    assert_eq!(
        code(d.describe_group(&f.org, &u)),
        "EntityNotFoundException"
    );
    assert_eq!(code(d.describe_user(&f.org, &g)), "EntityNotFoundException");
    // Same name for a user and a group: ambiguous when both kinds are allowed.
    let g2 = d
        .create_group(&f.org, "kim", false)
        .expect("group named kim");
    assert_eq!(
        code(d.resolve_identifier(&f.org, "kim", ANY_KIND)),
        "InvalidParameterException"
    );
    assert_eq!(
        d.describe_group(&f.org, "kim").map(|g| g.base.id).ok(),
        Some(g2)
    );
    // Another organization's entity is invisible.
    let other = d.create_organization("other", "other.test").expect("org");
    assert_eq!(code(d.describe_user(&other, &u)), "EntityNotFoundException");
    assert_eq!(
        code(d.describe_user(&other, "kim@example.test")),
        "EntityNotFoundException"
    );
    // Malformed identifiers.
    assert_eq!(
        code(d.describe_user(&f.org, "")),
        "InvalidParameterException"
    );
    assert_eq!(
        code(d.describe_user(&f.org, "a\nb")),
        "InvalidParameterException"
    );
    // DescribeEntity by address.
    let e = d
        .describe_entity(&f.org, "KIM-GROUP@example.test")
        .expect("describe entity");
    assert_eq!((e.id, e.kind), (g, EntityKind::Group));
    assert_eq!(
        code(d.describe_entity(&f.org, "nobody@example.test")),
        "EntityNotFoundException"
    );
}
