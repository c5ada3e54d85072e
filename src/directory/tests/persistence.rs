//! Persistence: failed writes, no-op writes, reload, corrupt data, generation.

use super::*;

#[test]
fn failed_backend_apply_changes_nothing() {
    let f = fixture();
    let d = &f.dir;
    let u = f.user("stable");
    let g = f.group("grp");
    let before = d.export().expect("export");
    let gen_before = d.generation();
    let applies = f.backend.apply_count();
    f.backend.set_fail(true);
    let attempts: Vec<R<()>> = vec![
        d.create_user(
            &f.org,
            NewUser {
                name: "new",
                display_name: "N",
                ..Default::default()
            },
        )
        .map(|_| ()),
        d.create_alias(&f.org, &u, "alias@example.test"),
        d.associate_member_to_group(&f.org, &g, &u),
        d.put_mailbox_permissions(&f.org, &u, &g, &[Permission::FullAccess]),
        d.deregister_from_workmail(&f.org, &u),
        d.register_mail_domain(&f.org, "new.test"),
        d.create_organization("neworg", "neworg.test").map(|_| ()),
        d.update_mailbox_quota(&f.org, &u, 5),
    ];
    for (i, r) in attempts.into_iter().enumerate() {
        assert_eq!(code(r), "DirectoryUnavailableException", "attempt {i}");
    }
    assert_eq!(d.export().expect("export"), before, "memory unchanged");
    assert_eq!(d.generation(), gen_before);
    assert_eq!(f.backend.apply_count(), applies);
    assert_eq!(d.resolve_address("alias@example.test"), None);
    assert_eq!(d.user_epoch(&u), Some((EntityState::Enabled, 0)));
    assert_eq!(
        code(d.describe_user(&f.org, "new")),
        "EntityNotFoundException"
    );
    // Validation errors win over the backend: nothing is written for them.
    assert_eq!(
        code(d.create_alias(&f.org, &u, "x@elsewhere.test")),
        "MailDomainNotFoundException"
    );
    f.backend.set_fail(false);
    assert_eq!(code(d.create_alias(&f.org, &u, "alias@example.test")), "ok");
    assert!(d.generation() > gen_before);
}

#[test]
fn no_op_mutations_write_nothing() {
    let f = fixture();
    let d = &f.dir;
    let u = f.user("same");
    let (gen_before, applies) = (d.generation(), f.backend.apply_count());
    d.register_mail_domain(&f.org, "example.test")
        .expect("same domain");
    d.register_to_workmail(&f.org, &u, "same@example.test")
        .expect("same email");
    d.delete_alias(&f.org, &u, "absent@example.test")
        .expect("absent alias");
    d.update_user(&f.org, &u, UserUpdate::default())
        .expect("empty update");
    assert_eq!(
        (d.generation(), f.backend.apply_count()),
        (gen_before, applies)
    );
}

#[test]
fn reload_gives_an_equal_directory() {
    let f = fixture();
    let d = &f.dir;
    d.register_mail_domain(&f.org, "second.test")
        .expect("domain");
    let (a, b) = (f.user("anna"), f.user("ben"));
    d.create_alias(&f.org, &a, "anna@second.test")
        .expect("alias");
    let g = f.group("Friends");
    f.add(&g, &a);
    let room = f.room("room");
    d.associate_delegate_to_resource(&f.org, &room, &b)
        .expect("delegate");
    d.put_mailbox_permissions(&f.org, &a, &g, &[Permission::SendAs])
        .expect("grant");
    d.update_mailbox_quota(&f.org, &b, 100).expect("quota");
    let gone = f.user("gone");
    d.deregister_from_workmail(&f.org, &gone).expect("disable");
    d.delete_user(&f.org, &gone).expect("delete");
    let _org2 = d.create_organization("other", "other.test").expect("org2");

    let exported = d.export().expect("export");
    assert_eq!(exported, f.backend.records(), "memory and backend agree");
    let reopened = Directory::open(f.backend.clone()).expect("reopen");
    assert_eq!(reopened.export().expect("export"), exported);
    assert_eq!(
        reopened.resolve_address("ANNA@second.test"),
        d.resolve_address("anna@second.test")
    );
    assert_eq!(reopened.mailbox_rights(&f.org, &a, &a), Rights::ALL);
    assert_eq!(reopened.user_epoch(&gone), d.user_epoch(&gone));
    assert_eq!(reopened.expand_recipients(&f.org, &g), vec![a.clone()]);
    // The reloaded indexes enforce uniqueness too.
    assert_eq!(
        code(reopened.create_user(
            &f.org,
            NewUser {
                name: "ANNA",
                display_name: "x",
                ..Default::default()
            }
        )),
        "NameAvailabilityException"
    );
    assert_eq!(
        code(reopened.create_group(&f.org, "friends", false)),
        "NameAvailabilityException"
    );
    assert_eq!(
        code(reopened.create_alias(&f.org, &b, "anna@second.test")),
        "EmailAddressInUseException"
    );
}

#[test]
fn corrupt_records_are_refused_at_open() {
    let f = fixture();
    let a = f.user("a");
    let _b = f.user("b");
    let records = f.backend.records();

    // An address used twice.
    let mut dup = records.clone();
    for r in &mut dup {
        if r.kind == RecordKind::User && r.id != a {
            r.json = r.json.replace("b@example.test", "a@example.test");
        }
    }
    let e = Directory::open(Arc::new(MemoryBackend::with_records(dup))).map(|_| ());
    assert_eq!(code(e), "DirectoryUnavailableException");

    // Bad JSON.
    let mut bad = records.clone();
    if let Some(r) = bad.iter_mut().find(|r| r.kind == RecordKind::User) {
        r.json = "{not json".into();
    }
    assert!(matches!(
        Directory::open(Arc::new(MemoryBackend::with_records(bad))),
        Err(DirectoryError::Backend(_))
    ));

    // A user whose organization is missing.
    let orphan: Vec<Record> = records
        .iter()
        .filter(|r| r.kind != RecordKind::Organization)
        .cloned()
        .collect();
    assert!(Directory::open(Arc::new(MemoryBackend::with_records(orphan))).is_err());

    // Record key and JSON disagree.
    let mut wrong = records.clone();
    if let Some(r) = wrong.iter_mut().find(|r| r.kind == RecordKind::User) {
        r.id = "someone-else".into();
    }
    assert!(Directory::open(Arc::new(MemoryBackend::with_records(wrong))).is_err());

    // The untouched records load.
    assert!(Directory::open(Arc::new(MemoryBackend::with_records(records))).is_ok());
}

#[test]
fn generation_counts_successful_changes() {
    let f = fixture();
    let g0 = f.dir.generation();
    f.new_user("x");
    assert_eq!(f.dir.generation(), g0 + 1);
    let _ = f.dir.create_user(
        &f.org,
        NewUser {
            name: "x",
            display_name: "x",
            ..Default::default()
        },
    );
    assert_eq!(f.dir.generation(), g0 + 1, "refused: no bump");
}
