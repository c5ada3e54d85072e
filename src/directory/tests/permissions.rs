//! Mailbox permissions, rights through nested groups, send authority.

use super::*;

#[test]
fn put_list_replace_delete_permissions() {
    let f = fixture();
    let d = &f.dir;
    let (owner, alice) = (f.user("owner"), f.user("alice"));
    let team = f.group("team");
    let room = f.room("room");
    assert_eq!(
        code(d.put_mailbox_permissions(
            &f.org,
            &owner,
            &alice,
            &[
                Permission::SendAs,
                Permission::FullAccess,
                Permission::SendAs
            ]
        )),
        "ok"
    );
    let list = d
        .list_mailbox_permissions(&f.org, "owner@example.test")
        .expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].grantee_id, alice);
    assert_eq!(list[0].grantee_type, MemberType::User);
    assert_eq!(
        list[0].values.iter().copied().collect::<Vec<_>>(),
        vec![Permission::FullAccess, Permission::SendAs]
    );
    // Put replaces.
    assert_eq!(
        code(d.put_mailbox_permissions(&f.org, &owner, "alice", &[Permission::SendOnBehalf])),
        "ok"
    );
    let list = d.list_mailbox_permissions(&f.org, &owner).expect("list");
    assert_eq!(
        list[0].values.iter().copied().collect::<Vec<_>>(),
        vec![Permission::SendOnBehalf]
    );
    assert_eq!(
        code(d.put_mailbox_permissions(&f.org, &owner, &team, &[Permission::FullAccess])),
        "ok"
    );
    assert_eq!(
        d.list_mailbox_permissions(&f.org, &owner)
            .map(|l| l.len())
            .ok(),
        Some(2)
    );
    // Empty set and Delete both remove.
    assert_eq!(
        code(d.put_mailbox_permissions(&f.org, &owner, &team, &[])),
        "ok"
    );
    assert_eq!(
        code(d.delete_mailbox_permissions(&f.org, &owner, &alice)),
        "ok"
    );
    assert_eq!(
        code(d.delete_mailbox_permissions(&f.org, &owner, &alice)),
        "ok",
        "idempotent"
    );
    assert_eq!(
        d.list_mailbox_permissions(&f.org, &owner)
            .map(|l| l.len())
            .ok(),
        Some(0)
    );
    // Refusals.
    assert_eq!(
        code(d.put_mailbox_permissions(&f.org, &team, &alice, &[Permission::SendAs])),
        "InvalidParameterException"
    );
    assert_eq!(
        code(d.put_mailbox_permissions(&f.org, &owner, &room, &[Permission::SendAs])),
        "InvalidParameterException"
    );
    assert_eq!(
        code(d.put_mailbox_permissions(&f.org, &owner, &owner, &[Permission::SendAs])),
        "InvalidParameterException"
    );
    assert_eq!(
        code(d.put_mailbox_permissions(&f.org, &owner, "ghost", &[Permission::SendAs])),
        "EntityNotFoundException"
    );
    let disabled = f.new_user("disabled");
    assert_eq!(
        code(d.put_mailbox_permissions(&f.org, &owner, &disabled, &[Permission::SendAs])),
        "EntityStateException"
    );
    assert_eq!(
        code(d.list_mailbox_permissions(&f.org, &team)),
        "InvalidParameterException"
    );
    // A resource mailbox takes grants too.
    assert_eq!(
        code(d.put_mailbox_permissions(&f.org, &room, &alice, &[Permission::FullAccess])),
        "ok"
    );
}

#[test]
fn rights_resolve_through_nested_groups() {
    let f = fixture();
    let d = &f.dir;
    let (owner, alice, bob, carol) = (
        f.user("owner"),
        f.user("alice"),
        f.user("bob"),
        f.user("carol"),
    );
    let (outer, inner) = (f.group("outer"), f.group("inner"));
    f.add(&outer, &inner);
    f.add(&inner, &alice);
    f.add(&outer, &bob);
    d.put_mailbox_permissions(&f.org, &owner, &outer, &[Permission::FullAccess])
        .expect("group grant");
    d.put_mailbox_permissions(&f.org, &owner, &alice, &[Permission::SendOnBehalf])
        .expect("user grant");

    assert_eq!(
        d.mailbox_rights(&f.org, &owner, &owner),
        Rights::ALL,
        "owner has everything"
    );
    assert_eq!(
        d.mailbox_rights(&f.org, &alice, &owner),
        Rights {
            full_access: true,
            send_as: false,
            send_on_behalf: true
        },
        "union of nested group grant and direct grant"
    );
    assert_eq!(
        d.mailbox_rights(&f.org, &bob, &owner),
        Rights {
            full_access: true,
            ..Rights::NONE
        }
    );
    assert_eq!(d.mailbox_rights(&f.org, &carol, &owner), Rights::NONE);
    assert_eq!(d.mailbox_rights(&f.org, &alice, "nobody"), Rights::NONE);
    assert_eq!(d.mailbox_rights("m-other", &alice, &owner), Rights::NONE);

    // A disabled intermediate group passes nothing on.
    d.deregister_from_workmail(&f.org, &inner)
        .expect("disable inner");
    assert_eq!(
        d.mailbox_rights(&f.org, &alice, &owner),
        Rights {
            send_on_behalf: true,
            ..Rights::NONE
        }
    );
    // A disabled grantee or owner has nothing.
    d.deregister_from_workmail(&f.org, &bob)
        .expect("disable bob");
    assert_eq!(d.mailbox_rights(&f.org, &bob, &owner), Rights::NONE);
    d.deregister_from_workmail(&f.org, &owner)
        .expect("disable owner");
    assert_eq!(d.mailbox_rights(&f.org, &alice, &owner), Rights::NONE);
}

#[test]
fn sender_grants_name_the_owner_and_the_rights_on_it() {
    let f = fixture();
    let d = &f.dir;
    let (boss, pa, deputy, other) = (
        f.user("boss"),
        f.user("pa"),
        f.user("deputy"),
        f.user("other"),
    );
    let team = f.group("team");
    let room = f.room("room");
    d.create_alias(&f.org, &boss, "ceo@example.test")
        .expect("alias");
    d.put_mailbox_permissions(
        &f.org,
        &boss,
        &pa,
        &[Permission::SendAs, Permission::SendOnBehalf],
    )
    .expect("grant");
    d.put_mailbox_permissions(&f.org, &boss, &deputy, &[Permission::SendOnBehalf])
        .expect("grant");
    d.put_mailbox_permissions(&f.org, &room, &team, &[Permission::SendAs])
        .expect("grant");
    f.add(&team, &other);

    let grants = |user: &str, address: &str| d.sender_grants(&f.org, user, address);
    let send = |as_, behalf| Rights {
        full_access: false,
        send_as: as_,
        send_on_behalf: behalf,
    };
    assert_eq!(
        grants(&boss, "BOSS@example.test"),
        Some((boss.clone(), Rights::ALL))
    );
    assert_eq!(
        grants(&boss, "ceo@example.test"),
        Some((boss.clone(), Rights::ALL))
    );
    assert_eq!(
        grants(&pa, "ceo@example.test"),
        Some((boss.clone(), send(true, true)))
    );
    assert_eq!(
        grants(&deputy, "boss@example.test"),
        Some((boss.clone(), send(false, true)))
    );
    assert_eq!(
        grants(&other, "boss@example.test"),
        Some((boss.clone(), Rights::NONE))
    );
    assert_eq!(
        grants(&other, "room@example.test"),
        Some((room.clone(), send(true, false))),
        "through the group"
    );
    assert_eq!(
        grants(&other, "team@example.test"),
        None,
        "groups have no mailbox"
    );
    assert_eq!(grants(&boss, "nobody@example.test"), None);
    let org2 = d.create_organization("two", "two.test").expect("org2");
    assert_eq!(d.sender_grants(&org2, &boss, "boss@example.test"), None);
    d.deregister_from_workmail(&f.org, &boss).expect("disable");
    assert_eq!(grants(&boss, "boss@example.test"), None, "not enabled");
}
