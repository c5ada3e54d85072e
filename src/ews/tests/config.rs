//! GetServiceConfiguration and GetMailTips, as Outlook and exchangelib send them.

use super::*;
use crate::store::{FolderKind, FolderRef, Target};

fn names(e: &Element) -> Vec<&str> {
    e.children.iter().map(|c| c.name.as_str()).collect()
}

fn service_configuration(names: &[&str]) -> String {
    let names: String = names
        .iter()
        .map(|n| format!("<m:ConfigurationName>{n}</m:ConfigurationName>"))
        .collect();
    format!(
        "<m:GetServiceConfiguration><m:RequestedConfiguration>{names}</m:RequestedConfiguration></m:GetServiceConfiguration>"
    )
}

#[tokio::test]
async fn service_configuration_answers_each_configuration_asked_for() {
    let f = Fixture::new().await;
    let root = f
        .call(&service_configuration(&[
            "MailTips",
            "UnifiedMessagingConfiguration",
            "ProtectionRules",
        ]))
        .await;
    let response = root
        .path(&["Body", "GetServiceConfigurationResponse"])
        .unwrap();
    assert_eq!(response.attr("ResponseClass"), Some("Success"));
    assert_eq!(response.child_text("ResponseCode"), Some("NoError"));
    let msg = response
        .path(&[
            "ResponseMessages",
            "ServiceConfigurationResponseMessageType",
        ])
        .unwrap();
    assert_eq!(msg.attr("ResponseClass"), Some("Success"));
    assert_eq!(
        names(msg),
        [
            "ResponseCode",
            "MailTipsConfiguration",
            "UnifiedMessagingConfiguration",
            "ProtectionRulesConfiguration"
        ]
    );

    let tips = msg.child("MailTipsConfiguration").unwrap();
    assert_eq!(
        names(tips),
        [
            "MailTipsEnabled",
            "MaxRecipientsPerGetMailTipsRequest",
            "MaxMessageSize",
            "LargeAudienceThreshold",
            "ShowExternalRecipientCount",
            "InternalDomains",
            "PolicyTipsEnabled",
            "LargeAudienceCap"
        ],
        "types.xsd order"
    );
    assert_eq!(tips.child_text("MailTipsEnabled"), Some("true"));
    assert_eq!(tips.child_text("MaxMessageSize"), Some("41943040"));
    assert_eq!(
        tips.child_text("MaxRecipientsPerGetMailTipsRequest"),
        Some("50")
    );
    let domains: Vec<&str> = tips
        .child("InternalDomains")
        .unwrap()
        .children_named("Domain")
        .map(|d| d.attr("Name").unwrap())
        .collect();
    assert_eq!(domains, ["acme.test"]);

    let um = msg.child("UnifiedMessagingConfiguration").unwrap();
    assert_eq!(
        names(um),
        ["UmEnabled", "PlayOnPhoneDialString", "PlayOnPhoneEnabled"]
    );
    assert_eq!(um.child_text("UmEnabled"), Some("false"));
    let rules = msg.child("ProtectionRulesConfiguration").unwrap();
    assert_eq!(rules.attr("RefreshInterval"), Some("24"));
    assert!(rules.child("Rules").unwrap().children.is_empty());
    assert_eq!(names(rules), ["Rules", "InternalDomains"]);

    // Only what is asked for.
    let root = f.call(&service_configuration(&["MailTips"])).await;
    let msg = root
        .path(&[
            "Body",
            "GetServiceConfigurationResponse",
            "ResponseMessages",
            "ServiceConfigurationResponseMessageType",
        ])
        .unwrap();
    assert_eq!(names(msg), ["ResponseCode", "MailTipsConfiguration"]);
}

#[tokio::test]
async fn service_configuration_refuses_unknown_or_missing_names() {
    let f = Fixture::new().await;
    for bad in [
        service_configuration(&["MailTips", "Nonsense"]),
        service_configuration(&[]),
        "<m:GetServiceConfiguration/>".to_string(),
    ] {
        let root = f.call(&bad).await;
        let response = root
            .path(&["Body", "GetServiceConfigurationResponse"])
            .unwrap();
        assert_eq!(response.attr("ResponseClass"), Some("Error"), "{bad}");
        assert_eq!(
            response.child_text("ResponseCode"),
            Some("ErrorSchemaValidation")
        );
        assert!(response.child("ResponseMessages").is_none());
    }
}

fn mail_tips(recipients: &[&str], requested: &str) -> String {
    let mailboxes: String = recipients
        .iter()
        .map(|r| format!("<t:Mailbox><t:EmailAddress>{r}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox>"))
        .collect();
    format!(
        "<m:GetMailTips><m:SendingAs><t:EmailAddress>alice@acme.test</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></m:SendingAs><m:Recipients>{mailboxes}</m:Recipients><m:MailTipsRequested>{requested}</m:MailTipsRequested></m:GetMailTips>"
    )
}

/// Bob's mailbox over its quota, a group of alice and bob.
async fn tips_fixture() -> Fixture {
    let f = Fixture::with(|d, org, alice, bob| {
        let team = d.create_group(org, "team", false).unwrap();
        d.register_to_workmail(org, &team, "team@acme.test")
            .unwrap();
        d.associate_member_to_group(org, &team, alice).unwrap();
        d.associate_member_to_group(org, &team, bob).unwrap();
    })
    .await;
    let store = &f.world.store;
    let bob = f.world.bob.clone();
    store.create_mailbox(&bob, 1 << 30).await.unwrap();
    let target = Target {
        folder: FolderRef::Kind(bob.clone(), FolderKind::Inbox),
        flags: vec![],
        properties: Vec::new(),
    };
    store
        .deliver(
            Arc::from(mail("big", "x@example.org").as_bytes()),
            1,
            vec![target],
        )
        .await
        .unwrap();
    store.set_quota(&bob, 10).await.unwrap();
    f
}

fn tips_of(root: &Element) -> Vec<&Element> {
    let response = root.path(&["Body", "GetMailTipsResponse"]).unwrap();
    assert_eq!(response.attr("ResponseClass"), Some("Success"));
    messages(root, "GetMailTips")
        .into_iter()
        .map(|m| {
            assert_eq!(m.name, "MailTipsResponseMessageType");
            assert_eq!(m.child_text("ResponseCode"), Some("NoError"));
            m.child("MailTips").unwrap()
        })
        .collect()
}

#[tokio::test]
async fn mail_tips_describe_each_recipient_in_request_order() {
    let f = tips_fixture().await;
    let root = f
        .call(&mail_tips(
            &[
                "bob@acme.test",
                "team@acme.test",
                "nobody@acme.test",
                "someone@example.org",
                "alice@acme.test",
            ],
            "All",
        ))
        .await;
    let tips = tips_of(&root);
    let addresses: Vec<&str> = tips
        .iter()
        .map(|t| {
            t.path(&["RecipientAddress", "EmailAddress"])
                .unwrap()
                .text
                .as_str()
        })
        .collect();
    assert_eq!(
        addresses,
        [
            "bob@acme.test",
            "team@acme.test",
            "nobody@acme.test",
            "someone@example.org",
            "alice@acme.test"
        ]
    );
    let (bob, team, nobody, external, alice) = (tips[0], tips[1], tips[2], tips[3], tips[4]);
    assert_eq!(
        names(bob),
        [
            "RecipientAddress",
            "PendingMailTips",
            "OutOfOffice",
            "MailboxFull",
            "TotalMemberCount",
            "ExternalMemberCount",
            "MaxMessageSize",
            "DeliveryRestricted",
            "IsModerated",
            "InvalidRecipient"
        ],
        "types.xsd order"
    );
    assert_eq!(bob.child_text("MailboxFull"), Some("true"), "over quota");
    assert_eq!(alice.child_text("MailboxFull"), Some("false"));
    assert_eq!(bob.child_text("MaxMessageSize"), Some("41943040"));
    assert_eq!(bob.child_text("InvalidRecipient"), Some("false"));
    assert_eq!(bob.child_text("TotalMemberCount"), Some("1"));

    assert_eq!(team.child_text("TotalMemberCount"), Some("2"));
    assert_eq!(team.child_text("ExternalMemberCount"), Some("0"));
    assert!(team.child("MailboxFull").is_none());
    assert_eq!(
        team.path(&["RecipientAddress", "Name"])
            .map(|n| n.text.as_str()),
        Some("team")
    );

    assert_eq!(nobody.child_text("InvalidRecipient"), Some("true"));
    assert_eq!(
        names(nobody),
        ["RecipientAddress", "PendingMailTips", "InvalidRecipient"]
    );

    assert_eq!(external.child_text("InvalidRecipient"), Some("false"));
    assert_eq!(external.child_text("ExternalMemberCount"), Some("1"));
    assert!(external.child("MaxMessageSize").is_none());
    assert!(external.child("MailboxFull").is_none());
}

#[tokio::test]
async fn mail_tips_carry_only_the_tips_asked_for() {
    let f = tips_fixture().await;
    let root = f
        .call(&mail_tips(
            &["bob@acme.test", "team@acme.test", "not-an-address"],
            "MailboxFullStatus InvalidRecipient",
        ))
        .await;
    let tips = tips_of(&root);
    assert_eq!(tips[2].child_text("InvalidRecipient"), Some("true"));
    assert_eq!(
        names(tips[0]),
        [
            "RecipientAddress",
            "PendingMailTips",
            "MailboxFull",
            "InvalidRecipient"
        ]
    );
    assert_eq!(
        names(tips[1]),
        ["RecipientAddress", "PendingMailTips", "InvalidRecipient"]
    );
}

#[tokio::test]
async fn mail_tips_refuse_bad_requests_whole() {
    let f = Fixture::new().await;
    let many: Vec<String> = (0..51).map(|i| format!("u{i}@example.org")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for (body, code) in [
        (
            mail_tips(&["bob@acme.test"], "All Bogus"),
            "ErrorSchemaValidation",
        ),
        (mail_tips(&[], "All"), "ErrorSchemaValidation"),
        (mail_tips(&many, "All"), "ErrorInvalidRecipients"),
    ] {
        let root = f.call(&body).await;
        let response = root.path(&["Body", "GetMailTipsResponse"]).unwrap();
        assert_eq!(response.attr("ResponseClass"), Some("Error"));
        assert_eq!(response.child_text("ResponseCode"), Some(code));
        assert!(response.child("ResponseMessages").is_none());
    }
}
