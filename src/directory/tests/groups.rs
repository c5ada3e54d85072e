//! Group nesting, cycle refusal, expansion and reference clean-up on delete.

use super::*;

#[test]
fn group_nesting_and_cycle_refusal() {
    let f = fixture();
    let d = &f.dir;
    let (a, b, c) = (f.group("ga"), f.group("gb"), f.group("gc"));
    f.add(&a, &b);
    f.add(&b, &c);
    assert_eq!(
        code(d.associate_member_to_group(&f.org, &a, &a)),
        "InvalidParameterException",
        "self"
    );
    assert_eq!(
        code(d.associate_member_to_group(&f.org, &b, &a)),
        "InvalidParameterException",
        "2-cycle"
    );
    assert_eq!(
        code(d.associate_member_to_group(&f.org, &c, &a)),
        "InvalidParameterException",
        "3-cycle"
    );
    assert_eq!(
        code(d.associate_member_to_group(&f.org, &a, &c)),
        "ok",
        "diamond is fine"
    );
    let g = d.generation();
    assert_eq!(
        code(d.associate_member_to_group(&f.org, &a, "gc@example.test")),
        "ok"
    );
    assert_eq!(d.generation(), g, "already a member: no-op");

    // Members must be enabled; the group may still be disabled.
    let dis = f.new_user("disabled");
    assert_eq!(
        code(d.associate_member_to_group(&f.org, &a, &dis)),
        "EntityStateException"
    );
    let new_group = d.create_group(&f.org, "not-yet", false).expect("group");
    let u = f.user("member");
    assert_eq!(
        code(d.associate_member_to_group(&f.org, &new_group, &u)),
        "ok"
    );
    assert_eq!(
        code(d.associate_member_to_group(&f.org, &a, &new_group)),
        "EntityStateException"
    );
    assert_eq!(
        code(d.associate_member_to_group(&f.org, &a, "nobody")),
        "EntityNotFoundException"
    );

    let members = d.list_group_members(&f.org, &a).expect("members");
    let mut expect = vec![b.clone(), c.clone()];
    expect.sort();
    assert_eq!(
        members.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        expect
    );
    assert!(
        members
            .iter()
            .all(|m| m.kind == MemberType::Group && m.state == EntityState::Enabled)
    );
    let parents: Vec<String> = d
        .list_groups_for_entity(&f.org, &c)
        .expect("groups for c")
        .into_iter()
        .map(|g| g.base.id)
        .collect();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(parents, want);

    assert_eq!(code(d.disassociate_member_from_group(&f.org, &a, &c)), "ok");
    assert_eq!(
        code(d.disassociate_member_from_group(&f.org, &a, &c)),
        "ok",
        "idempotent"
    );
    assert_eq!(
        d.list_group_members(&f.org, &a).map(|m| m.len()).ok(),
        Some(1)
    );
}

#[test]
fn expand_recipients_through_nested_groups() {
    let f = fixture();
    let d = &f.dir;
    let (top, mid, leaf) = (f.group("top"), f.group("mid"), f.group("leaf"));
    let (u1, u2, u3) = (f.user("u1"), f.user("u2"), f.user("u3"));
    let remote = d
        .create_user(
            &f.org,
            NewUser {
                name: "remote",
                display_name: "R",
                role: Some(UserRole::RemoteUser),
                ..Default::default()
            },
        )
        .expect("remote");
    d.register_to_workmail(&f.org, &remote, "remote@example.test")
        .expect("register");
    f.add(&top, &u1);
    f.add(&top, &mid);
    f.add(&mid, &u2);
    f.add(&mid, &leaf);
    f.add(&leaf, &u3);
    f.add(&leaf, &u1); // duplicate through nesting
    f.add(&leaf, &remote);
    let mut all = vec![u1.clone(), u2.clone(), u3.clone()];
    all.sort();
    assert_eq!(
        d.expand_recipients(&f.org, &top),
        all,
        "nested, deduplicated, no remote user"
    );

    // A disabled user drops out; a disabled nested group passes nothing on.
    d.deregister_from_workmail(&f.org, &u2).expect("disable u2");
    let mut want = vec![u1.clone(), u3.clone()];
    want.sort();
    assert_eq!(d.expand_recipients(&f.org, &top), want);
    d.deregister_from_workmail(&f.org, &leaf)
        .expect("disable leaf");
    assert_eq!(d.expand_recipients(&f.org, &top), vec![u1.clone()]);
    assert!(
        d.expand_recipients(&f.org, &leaf).is_empty(),
        "disabled group expands to nothing"
    );
    assert!(d.expand_recipients(&f.org, "no-such-group").is_empty());
    assert!(d.expand_recipients("m-nope", &top).is_empty());
}

#[test]
fn deleting_entities_removes_their_references() {
    let f = fixture();
    let d = &f.dir;
    let (parent, child) = (f.group("parent"), f.group("child"));
    let (owner, member) = (f.user("owner"), f.user("member"));
    let room = f.room("room");
    f.add(&parent, &child);
    f.add(&parent, &member);
    d.associate_delegate_to_resource(&f.org, &room, &member)
        .expect("delegate");
    d.associate_delegate_to_resource(&f.org, &room, &child)
        .expect("delegate group");
    d.put_mailbox_permissions(&f.org, &owner, &member, &[Permission::FullAccess])
        .expect("grant");
    d.put_mailbox_permissions(&f.org, &owner, &child, &[Permission::SendAs])
        .expect("grant group");
    d.put_mailbox_permissions(&f.org, &room, &member, &[Permission::FullAccess])
        .expect("grant room");

    d.deregister_from_workmail(&f.org, &member)
        .expect("disable");
    d.delete_user(&f.org, &member).expect("delete user");
    assert_eq!(
        d.list_group_members(&f.org, &parent).map(|m| m.len()).ok(),
        Some(1)
    );
    assert_eq!(
        d.list_resource_delegates(&f.org, &room)
            .map(|m| m.len())
            .ok(),
        Some(1)
    );
    assert_eq!(
        d.list_mailbox_permissions(&f.org, &owner)
            .map(|p| p.len())
            .ok(),
        Some(1)
    );
    assert_eq!(
        d.list_mailbox_permissions(&f.org, &room)
            .map(|p| p.len())
            .ok(),
        Some(0)
    );

    d.deregister_from_workmail(&f.org, &child)
        .expect("disable group");
    d.delete_group(&f.org, &child).expect("delete group");
    assert_eq!(
        d.list_group_members(&f.org, &parent).map(|m| m.len()).ok(),
        Some(0)
    );
    assert_eq!(
        d.list_resource_delegates(&f.org, &room)
            .map(|m| m.len())
            .ok(),
        Some(0)
    );
    assert_eq!(
        d.list_mailbox_permissions(&f.org, &owner)
            .map(|p| p.len())
            .ok(),
        Some(0)
    );
    assert_eq!(
        code(d.list_group_members(&f.org, &child)),
        "EntityStateException"
    );
}

#[test]
fn group_update_hidden_from_gal() {
    let f = fixture();
    let g = f.group("quiet");
    assert_eq!(code(f.dir.update_group(&f.org, &g, Some(true))), "ok");
    assert_eq!(
        f.dir
            .describe_group(&f.org, &g)
            .map(|g| g.base.hidden_from_gal)
            .ok(),
        Some(true)
    );
}
