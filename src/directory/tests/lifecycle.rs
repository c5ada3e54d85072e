//! Entity lifecycles: create, register, deregister, delete, update; quota; passwords and login.

use super::*;

#[test]
fn user_lifecycle_and_errors() {
    let f = fixture();
    let d = &f.dir;
    let id = f.new_user("bob");
    assert!(ids::is_uuid_v4(&id));
    let u = d.describe_user(&f.org, &id).expect("describe");
    assert_eq!(u.base.state, EntityState::Disabled);
    assert_eq!(u.base.email, None);
    assert_eq!(u.role, UserRole::User);
    assert_eq!(u.mailbox_quota_mb, DEFAULT_QUOTA_MB);
    assert_eq!(d.user_epoch(&id), Some((EntityState::Disabled, 0)));

    // Register: enables and sets the primary address (lowercased).
    assert_eq!(
        code(d.register_to_workmail(&f.org, "bob", "Bob@Example.TEST")),
        "ok"
    );
    let u = d
        .describe_user(&f.org, "bob@example.test")
        .expect("by email");
    assert_eq!(u.base.state, EntityState::Enabled);
    assert_eq!(u.base.email.as_deref(), Some("bob@example.test"));
    assert!(u.base.enabled_date.is_some());
    assert!(matches!(
        d.resolve_address("BOB@example.test"),
        Some(Recipient::User { .. })
    ));

    // Register again: same address is a no-op, another is refused.
    let g = d.generation();
    assert_eq!(
        code(d.register_to_workmail(&f.org, &id, "bob@example.test")),
        "ok"
    );
    assert_eq!(d.generation(), g, "no-op writes nothing");
    assert_eq!(
        code(d.register_to_workmail(&f.org, &id, "robert@example.test")),
        "EntityAlreadyRegisteredException"
    );

    // Delete needs DISABLED.
    assert_eq!(code(d.delete_user(&f.org, &id)), "EntityStateException");
    assert_eq!(code(d.deregister_from_workmail(&f.org, &id)), "ok");
    assert_eq!(f.user_state(&id), EntityState::Disabled);
    assert_eq!(
        d.user_epoch(&id),
        Some((EntityState::Disabled, 1)),
        "disable bumps the epoch"
    );
    assert_eq!(
        d.resolve_address("bob@example.test"),
        None,
        "disabled gets no mail"
    );
    assert_eq!(
        d.login_lookup("bob@example.test").map(|c| c.state),
        Some(EntityState::Disabled),
        "but is found for login, so the refusal can say why"
    );
    assert_eq!(
        code(d.deregister_from_workmail(&f.org, &id)),
        "ok",
        "idempotent"
    );

    // Re-enable with a new address: the old primary becomes an alias.
    assert_eq!(
        code(d.register_to_workmail(&f.org, &id, "robert@example.test")),
        "ok"
    );
    assert_eq!(
        d.list_aliases(&f.org, &id).ok(),
        Some(vec!["bob@example.test".to_string()])
    );
    assert_eq!(code(d.deregister_from_workmail(&f.org, &id)), "ok");

    assert_eq!(code(d.delete_user(&f.org, &id)), "ok");
    let tomb = d.describe_user(&f.org, &id).expect("tombstone by id");
    assert_eq!(tomb.base.state, EntityState::Deleted);
    assert!(
        tomb.base.email.is_none() && tomb.base.aliases.is_empty() && tomb.password_hash.is_none()
    );
    assert_eq!(d.user_epoch(&id), Some((EntityState::Deleted, 3)));
    assert_eq!(
        code(d.describe_user(&f.org, "bob")),
        "EntityNotFoundException",
        "gone by name"
    );
    assert_eq!(
        code(d.describe_user(&f.org, "robert@example.test")),
        "EntityNotFoundException"
    );
    assert_eq!(d.login_lookup("robert@example.test"), None);
    assert!(d.list_users(&f.org).expect("list").is_empty());
    assert_eq!(
        code(d.register_to_workmail(&f.org, &id, "bob@example.test")),
        "EntityStateException"
    );
    assert_eq!(
        code(d.deregister_from_workmail(&f.org, &id)),
        "EntityStateException"
    );
    assert_eq!(code(d.delete_user(&f.org, &id)), "EntityStateException");
    assert_eq!(
        code(d.update_user(&f.org, &id, UserUpdate::default())),
        "EntityStateException"
    );

    // Name and addresses are free again; the id is not reused.
    let again = f.user("bob");
    assert_ne!(again, id);
    assert_eq!(
        code(d.create_alias(&f.org, &again, "robert@example.test")),
        "ok"
    );
}

#[test]
fn group_and_resource_lifecycle() {
    let f = fixture();
    let d = &f.dir;
    let g = d.create_group(&f.org, "Sales Team", false).expect("group");
    assert!(ids::is_uuid_v4(&g));
    assert_eq!(
        d.describe_group(&f.org, "sales team")
            .map(|g| g.base.state)
            .ok(),
        Some(EntityState::Disabled)
    );
    assert_eq!(
        code(d.register_to_workmail(&f.org, "Sales Team", "sales@example.test")),
        "ok"
    );
    assert!(matches!(
        d.resolve_address("sales@example.test"),
        Some(Recipient::Group { .. })
    ));
    assert_eq!(code(d.delete_group(&f.org, &g)), "EntityStateException");
    assert_eq!(
        code(d.deregister_from_workmail(&f.org, "sales@example.test")),
        "ok"
    );
    assert_eq!(code(d.delete_group(&f.org, &g)), "ok");
    assert_eq!(
        d.describe_group(&f.org, &g).map(|g| g.base.state).ok(),
        Some(EntityState::Deleted)
    );
    assert!(d.list_groups(&f.org).expect("list").is_empty());

    let r = f.room("room1");
    assert!(ids::is_resource_id(&r));
    assert!(matches!(
        d.resolve_address("room1@example.test"),
        Some(Recipient::Resource { .. })
    ));
    assert_eq!(
        code(d.delete_resource(&f.org, "room1")),
        "EntityStateException"
    );
    assert_eq!(code(d.deregister_from_workmail(&f.org, &r)), "ok");
    assert_eq!(code(d.delete_resource(&f.org, "room1")), "ok");
    assert_eq!(d.resolve_address("room1@example.test"), None);
    assert!(d.list_resources(&f.org).expect("list").is_empty());
}

#[test]
fn update_user_fields_and_role() {
    let f = fixture();
    let d = &f.dir;
    let id = f.user("dave");
    assert!(d.login_lookup("dave@example.test").is_some());
    let upd = UserUpdate {
        display_name: Some("Dave D".into()),
        first_name: Some("Dave".into()),
        hidden_from_gal: Some(true),
        contact: ContactDetails {
            city: Some("Oslo".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(code(d.update_user(&f.org, "dave", upd)), "ok");
    let u = d.describe_user(&f.org, &id).expect("describe");
    assert_eq!(u.display_name, "Dave D");
    assert_eq!(u.first_name.as_deref(), Some("Dave"));
    assert!(u.base.hidden_from_gal);
    assert_eq!(u.contact.city.as_deref(), Some("Oslo"));
    assert_eq!(u.credential_epoch, 0);

    let to_remote = UserUpdate {
        role: Some(UserRole::RemoteUser),
        ..Default::default()
    };
    assert_eq!(code(d.update_user(&f.org, &id, to_remote)), "ok");
    assert_eq!(
        d.user_epoch(&id),
        Some((EntityState::Enabled, 1)),
        "role change cuts sessions"
    );
    assert_eq!(
        d.login_lookup("dave@example.test"),
        None,
        "remote users have no mailbox login"
    );
    let bad_role = UserUpdate {
        role: Some(UserRole::SystemUser),
        ..Default::default()
    };
    assert_eq!(
        code(d.update_user(&f.org, &id, bad_role)),
        "InvalidParameterException"
    );
    let too_long = UserUpdate {
        display_name: Some("x".repeat(257)),
        ..Default::default()
    };
    assert_eq!(
        code(d.update_user(&f.org, &id, too_long)),
        "InvalidParameterException"
    );
}

#[test]
fn create_user_refusals() {
    let f = fixture();
    let d = &f.dir;
    f.new_user("erin");
    let mk = |name: &str, role: Option<UserRole>| {
        d.create_user(
            &f.org,
            NewUser {
                name,
                display_name: "x",
                role,
                ..Default::default()
            },
        )
    };
    assert_eq!(
        code(mk("ERIN", None)),
        "NameAvailabilityException",
        "names are case-insensitive"
    );
    assert_eq!(code(mk("erin smith", None)), "InvalidParameterException");
    assert_eq!(code(mk(&"e".repeat(65), None)), "InvalidParameterException");
    assert_eq!(code(mk("Mailer-Daemon", None)), "ReservedNameException");
    assert_eq!(
        code(mk("frank", Some(UserRole::Resource))),
        "InvalidParameterException"
    );
    assert_eq!(code(mk("frank", Some(UserRole::RemoteUser))), "ok");
    // A group and a resource may share a user's name.
    assert_eq!(code(d.create_group(&f.org, "erin", false)), "ok");
    assert_eq!(
        code(d.create_group(&f.org, "Erin", false)),
        "NameAvailabilityException"
    );
    let bad_pw = d.create_user(
        &f.org,
        NewUser {
            name: "gina",
            display_name: "Gina",
            password: Some("short1A"),
            ..Default::default()
        },
    );
    assert_eq!(code(bad_pw), "InvalidPasswordException");
    assert_eq!(
        code(d.describe_user(&f.org, "gina")),
        "EntityNotFoundException",
        "nothing created"
    );
}

#[test]
fn mailbox_quota_bounds() {
    let f = fixture();
    let d = &f.dir;
    let u = f.user("quota");
    assert_eq!(d.get_mailbox_quota(&f.org, &u).ok(), Some(51_200));
    assert_eq!(
        code(d.update_mailbox_quota(&f.org, &u, 0)),
        "InvalidParameterException"
    );
    assert_eq!(
        code(d.update_mailbox_quota(&f.org, &u, 51_201)),
        "InvalidParameterException"
    );
    assert_eq!(code(d.update_mailbox_quota(&f.org, &u, 1)), "ok");
    assert_eq!(
        d.get_mailbox_quota(&f.org, "quota@example.test").ok(),
        Some(1)
    );
    let remote = d
        .create_user(
            &f.org,
            NewUser {
                name: "far",
                display_name: "F",
                role: Some(UserRole::RemoteUser),
                ..Default::default()
            },
        )
        .expect("remote");
    assert_eq!(
        code(d.update_mailbox_quota(&f.org, &remote, 10)),
        "InvalidParameterException"
    );
}

#[test]
fn password_login_reset_and_epochs() {
    let f = fixture();
    let d = &f.dir;
    let id = d
        .create_user(
            &f.org,
            NewUser {
                name: "pat",
                display_name: "Pat",
                password: Some("First-pass1"),
                ..Default::default()
            },
        )
        .expect("user with password");
    d.register_to_workmail(&f.org, &id, "pat@example.test")
        .expect("register");
    d.create_alias(&f.org, &id, "p@example.test")
        .expect("alias");
    let c = d
        .login_lookup("P@EXAMPLE.TEST")
        .expect("login by alias, any case");
    assert_eq!(
        (
            c.user_id.as_str(),
            c.org_id.as_str(),
            c.state,
            c.credential_epoch
        ),
        (id.as_str(), f.org.as_str(), EntityState::Enabled, 0)
    );
    assert!(c.verify("First-pass1"));
    assert!(!c.verify("first-pass1"));
    let hash = c.password_hash.expect("has a hash");
    assert!(hash.as_str().starts_with("$argon2id$"));
    assert!(verify_password(hash.as_str(), "First-pass1"));

    assert_eq!(
        code(d.reset_password(&f.org, &id, "weak")),
        "InvalidPasswordException"
    );
    assert_eq!(
        d.user_epoch(&id),
        Some((EntityState::Enabled, 0)),
        "refused reset changes nothing"
    );
    assert_eq!(code(d.reset_password(&f.org, "pat", "Second-pass2")), "ok");
    let c = d.login_lookup("pat@example.test").expect("login");
    assert_eq!(c.credential_epoch, 1);
    assert!(c.verify("Second-pass2"));
    assert!(!c.verify("First-pass1"));
    assert_eq!(
        code(d.reset_password(&f.org, "nobody", "Second-pass2")),
        "EntityNotFoundException"
    );

    // No password: nothing to verify against.
    f.user("nopw");
    let c = d.login_lookup("nopw@example.test").expect("found");
    assert_eq!(c.password_hash, None);
    assert!(!c.verify("whatever"), "no password never matches");
    assert!(!verify_dummy("whatever"));
    assert_eq!(d.login_lookup("nobody@example.test"), None);
    f.group("team");
    assert_eq!(
        d.login_lookup("team@example.test"),
        None,
        "groups cannot log in"
    );
}
