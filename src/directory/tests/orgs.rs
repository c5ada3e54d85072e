//! Organizations and their mail domains.

use super::*;

#[test]
fn organization_create_describe_list() {
    let f = fixture();
    assert!(ids::is_org_id(&f.org));
    let o = f.dir.describe_organization(&f.org).expect("describe");
    assert_eq!(o.alias, "acme");
    assert_eq!(o.state, OrganizationState::Active);
    assert_eq!(o.default_mail_domain, "example.test");
    assert_eq!(o.mail_domains, vec!["example.test".to_string()]);
    let other = f
        .dir
        .create_organization("beta", "Beta.Test")
        .expect("second org");
    let all = f.dir.list_organizations();
    assert_eq!(all.len(), 2);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "sorted by id");
    assert_eq!(
        f.dir
            .describe_organization(&other)
            .map(|o| o.default_mail_domain)
            .ok()
            .as_deref(),
        Some("beta.test")
    );
}

#[test]
fn organization_refusals() {
    let f = fixture();
    assert_eq!(
        code(f.dir.create_organization("ACME", "other.test")),
        "NameAvailabilityException"
    );
    assert_eq!(
        code(f.dir.create_organization("beta", "EXAMPLE.test")),
        "MailDomainInUseException"
    );
    assert_eq!(
        code(f.dir.create_organization("d-123", "x.test")),
        "InvalidParameterException"
    );
    assert_eq!(
        code(f.dir.create_organization("ok", "nodot")),
        "InvalidParameterException"
    );
    let missing = "m-00000000000000000000000000000000";
    assert_eq!(
        code(f.dir.describe_organization(missing)),
        "OrganizationNotFoundException"
    );
    assert_eq!(
        code(f.dir.list_users(missing)),
        "OrganizationNotFoundException"
    );
    assert_eq!(
        code(f.dir.create_group(missing, "g", false)),
        "OrganizationNotFoundException"
    );
}

#[test]
fn mail_domain_rules() {
    let f = fixture();
    let d = &f.dir;
    assert_eq!(code(d.register_mail_domain(&f.org, "Second.Test")), "ok");
    assert_eq!(
        code(d.register_mail_domain(&f.org, "second.test")),
        "ok",
        "idempotent"
    );
    let doms = d.list_mail_domains(&f.org).expect("list");
    assert_eq!(
        doms,
        vec![
            MailDomain {
                name: "example.test".into(),
                is_default: true
            },
            MailDomain {
                name: "second.test".into(),
                is_default: false
            },
        ]
    );
    // Another org cannot take it.
    let other = d.create_organization("beta", "beta.test").expect("org");
    assert_eq!(
        code(d.register_mail_domain(&other, "second.test")),
        "MailDomainInUseException"
    );

    // Addresses must be in a registered domain of the same org.
    let u = f.new_user("bob");
    assert_eq!(
        code(d.register_to_workmail(&f.org, &u, "bob@beta.test")),
        "MailDomainNotFoundException"
    );
    assert_eq!(
        code(d.register_to_workmail(&f.org, &u, "bob@nowhere.test")),
        "MailDomainNotFoundException"
    );
    assert_eq!(
        code(d.register_to_workmail(&f.org, &u, "bob@example.test")),
        "ok"
    );
    assert_eq!(code(d.create_alias(&f.org, &u, "bobby@second.test")), "ok");

    // Default and in-use domains cannot go; unknown ones are a no-op.
    assert_eq!(
        code(d.deregister_mail_domain(&f.org, "example.test")),
        "MailDomainInUseException"
    );
    assert_eq!(
        code(d.deregister_mail_domain(&f.org, "second.test")),
        "MailDomainInUseException"
    );
    assert_eq!(code(d.deregister_mail_domain(&f.org, "unknown.test")), "ok");
    assert_eq!(
        code(d.update_default_mail_domain(&f.org, "unknown.test")),
        "MailDomainNotFoundException"
    );
    assert_eq!(
        code(d.update_default_mail_domain(&f.org, "second.test")),
        "ok"
    );
    assert_eq!(
        code(d.deregister_mail_domain(&f.org, "example.test")),
        "MailDomainInUseException",
        "bob@ uses it"
    );
    assert_eq!(code(d.delete_alias(&f.org, &u, "bobby@second.test")), "ok");
    assert_eq!(
        code(d.update_default_mail_domain(&f.org, "example.test")),
        "ok"
    );
    assert_eq!(code(d.deregister_mail_domain(&f.org, "second.test")), "ok");
    assert_eq!(d.list_mail_domains(&f.org).map(|v| v.len()).ok(), Some(1));
    // Freed: the other org may now register it.
    assert_eq!(code(d.register_mail_domain(&other, "second.test")), "ok");
}

#[test]
fn disabled_entities_keep_their_domain_in_use() {
    let f = fixture();
    f.dir
        .register_mail_domain(&f.org, "second.test")
        .expect("domain");
    let u = f.new_user("carol");
    f.dir
        .register_to_workmail(&f.org, &u, "carol@second.test")
        .expect("register");
    f.dir.deregister_from_workmail(&f.org, &u).expect("disable");
    assert_eq!(
        code(f.dir.deregister_mail_domain(&f.org, "second.test")),
        "MailDomainInUseException"
    );
    f.dir.delete_user(&f.org, &u).expect("delete");
    assert_eq!(
        code(f.dir.deregister_mail_domain(&f.org, "second.test")),
        "ok"
    );
}
