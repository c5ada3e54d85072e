//! Resources: booking options, delegates, updates.

use super::*;

#[test]
fn resource_booking_delegates_and_updates() {
    let f = fixture();
    let d = &f.dir;
    let room = f.room("room");
    let r = d.describe_resource(&f.org, "room").expect("describe");
    assert_eq!(r.booking_options, BookingOptions::default());
    assert_eq!(r.resource_type, ResourceType::Room);
    let manual = BookingOptions {
        auto_accept_requests: false,
        ..BookingOptions::default()
    };
    let upd = |b: BookingOptions| ResourceUpdate {
        booking_options: Some(b),
        ..Default::default()
    };
    assert_eq!(
        code(d.update_resource(&f.org, &room, upd(manual))),
        "InvalidConfigurationException"
    );

    let alice = f.user("alice");
    let team = f.group("team");
    assert_eq!(
        code(d.associate_delegate_to_resource(&f.org, &room, &alice)),
        "ok"
    );
    assert_eq!(
        code(d.associate_delegate_to_resource(&f.org, "room@example.test", "team")),
        "ok"
    );
    assert_eq!(
        code(d.associate_delegate_to_resource(&f.org, &room, &alice)),
        "ok",
        "idempotent"
    );
    let dis = f.new_user("dis");
    assert_eq!(
        code(d.associate_delegate_to_resource(&f.org, &room, &dis)),
        "EntityStateException"
    );
    let dels = d.list_resource_delegates(&f.org, &room).expect("delegates");
    assert_eq!(dels.len(), 2);
    assert!(dels.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        code(d.update_resource(&f.org, &room, upd(manual))),
        "ok",
        "delegates answer"
    );
    assert_eq!(
        code(d.disassociate_delegate_from_resource(&f.org, &room, &alice)),
        "ok"
    );
    assert_eq!(
        code(d.disassociate_delegate_from_resource(&f.org, &room, &team)),
        "InvalidConfigurationException",
        "last delegate of a manual resource"
    );
    assert_eq!(
        code(d.update_resource(&f.org, &room, upd(BookingOptions::default()))),
        "ok"
    );
    assert_eq!(
        code(d.disassociate_delegate_from_resource(&f.org, &room, &team)),
        "ok"
    );

    // Rename, retype, describe.
    let eq = d
        .create_resource(
            &f.org,
            NewResource {
                name: "beamer",
                resource_type: ResourceType::Equipment,
                description: None,
                hidden_from_gal: true,
            },
        )
        .expect("equipment");
    let rename = |n: &str| ResourceUpdate {
        name: Some(n.into()),
        ..Default::default()
    };
    assert_eq!(
        code(d.update_resource(&f.org, &eq, rename("ROOM"))),
        "NameAvailabilityException"
    );
    assert_eq!(
        code(d.update_resource(&f.org, &eq, rename("projector"))),
        "ok"
    );
    assert_eq!(
        code(d.update_resource(&f.org, &eq, rename("projector"))),
        "ok",
        "own name"
    );
    assert_eq!(
        code(d.update_resource(&f.org, &eq, rename("this-name-is-too-long"))),
        "InvalidParameterException"
    );
    let desc = |s: &str| ResourceUpdate {
        description: Some(s.into()),
        resource_type: Some(ResourceType::Room),
        ..Default::default()
    };
    assert_eq!(
        code(d.update_resource(&f.org, "projector", desc("Ceiling unit"))),
        "ok"
    );
    let r = d.describe_resource(&f.org, &eq).expect("describe");
    assert_eq!(
        (
            r.description.as_deref(),
            r.resource_type,
            r.base.hidden_from_gal
        ),
        (Some("Ceiling unit"), ResourceType::Room, true)
    );
    assert_eq!(code(d.update_resource(&f.org, &eq, desc(""))), "ok");
    assert_eq!(
        d.describe_resource(&f.org, &eq).map(|r| r.description).ok(),
        Some(None)
    );
    assert_eq!(
        code(d.update_resource(&f.org, &eq, desc(&"d".repeat(65)))),
        "InvalidParameterException"
    );
    let bad = NewResource {
        name: "x",
        resource_type: ResourceType::Room,
        description: Some(""),
        hidden_from_gal: false,
    };
    assert_eq!(
        code(d.create_resource(&f.org, bad)),
        "InvalidParameterException"
    );
}
