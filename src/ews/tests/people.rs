//! ResolveNames, ExpandDL and GetAttachment.

use base64::Engine;

use super::*;
use crate::store::FolderKind;

async fn team_fixture() -> Fixture {
    Fixture::with(|d, org, alice, bob| {
        let team = d.create_group(org, "team", false).unwrap();
        d.register_to_workmail(org, &team, "team@acme.test")
            .unwrap();
        d.associate_member_to_group(org, &team, alice).unwrap();
        d.associate_member_to_group(org, &team, bob).unwrap();
        let hidden = crate::directory::testing::user(d, org, "alfred", PASSWORD);
        d.update_user(
            org,
            &hidden,
            crate::directory::UserUpdate {
                hidden_from_gal: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    })
    .await
}

#[tokio::test]
async fn resolve_names_finds_the_address_list_not_hidden_users() {
    let f = team_fixture().await;
    let resolve = |typed: &str| {
        format!(
            r#"<m:ResolveNames ReturnFullContactData="false"><m:UnresolvedEntry>{typed}</m:UnresolvedEntry></m:ResolveNames>"#
        )
    };
    let root = f.call(&resolve("bo")).await;
    let m = &messages(&root, "ResolveNames")[0];
    assert_eq!(m.attr("ResponseClass"), Some("Success"));
    let set = m.child("ResolutionSet").unwrap();
    assert_eq!(set.attr("TotalItemsInView"), Some("1"));
    assert_eq!(
        set.path(&["Resolution", "Mailbox", "EmailAddress"])
            .unwrap()
            .text,
        "bob@acme.test"
    );

    let root = f.call(&resolve("acme")).await;
    let m = &messages(&root, "ResolveNames")[0];
    assert_eq!(m.attr("ResponseClass"), Some("Warning"));
    assert_eq!(
        m.child_text("ResponseCode"),
        Some("ErrorNameResolutionMultipleResults")
    );
    let emails: Vec<&str> = m
        .child("ResolutionSet")
        .unwrap()
        .children
        .iter()
        .map(|r| r.path(&["Mailbox", "EmailAddress"]).unwrap().text.as_str())
        .collect();
    assert_eq!(
        emails,
        ["alice@acme.test", "bob@acme.test", "team@acme.test"],
        "alfred is hidden"
    );
    assert_eq!(
        codes(&f.call(&resolve("alfred")).await, "ResolveNames"),
        ["ErrorNameResolutionNoResults"]
    );
    assert_eq!(
        codes(
            &f.call(&resolve("SMTP:team@acme.test")).await,
            "ResolveNames"
        ),
        ["NoError"]
    );

    let expand = r#"<m:ExpandDL><m:Mailbox><t:EmailAddress>team@acme.test</t:EmailAddress></m:Mailbox></m:ExpandDL>"#;
    let root = f.call(expand).await;
    let dl = messages(&root, "ExpandDL")[0].child("DLExpansion").unwrap();
    assert_eq!(dl.attr("TotalItemsInView"), Some("2"));
    let not_group = expand.replace("team@", "bob@");
    assert_eq!(
        codes(&f.call(&not_group).await, "ExpandDL"),
        ["ErrorNameResolutionNoResults"]
    );
}

#[tokio::test]
async fn get_attachment_returns_file_content_and_refuses_bad_ids() {
    let f = Fixture::new().await;
    let raw = "From: c@x.test\r\nSubject: att\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf; name=report.pdf\r\nContent-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
    let id = deliver(&f, FolderKind::Inbox, raw, 1, &[]).await;
    let get = format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Attachments"/><t:FieldURI FieldURI="item:HasAttachments"/></t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:GetItem>"#
    );
    let root = f.call(&get).await;
    let m = messages(&root, "GetItem")[0]
        .path(&["Items", "Message"])
        .unwrap();
    assert_eq!(m.child_text("HasAttachments"), Some("true"));
    let file = m.path(&["Attachments", "FileAttachment"]).unwrap();
    assert_eq!(file.child_text("Name"), Some("report.pdf"));
    let att = file
        .child("AttachmentId")
        .unwrap()
        .attr("Id")
        .unwrap()
        .to_string();

    let fetch = |id: &str| {
        format!(
            r#"<m:GetAttachment><m:AttachmentIds><t:AttachmentId Id="{id}"/></m:AttachmentIds></m:GetAttachment>"#
        )
    };
    let root = f.call(&fetch(&att)).await;
    let content = messages(&root, "GetAttachment")[0]
        .path(&["Attachments", "FileAttachment", "Content"])
        .unwrap()
        .text
        .clone();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(content)
            .unwrap(),
        b"%PDF-1.4\n"
    );
    assert_eq!(
        codes(&f.call(&fetch("bogus")).await, "GetAttachment"),
        ["ErrorInvalidIdMalformed"]
    );
    let wrong_part = crate::ews::ids::EwsId::Attachment(format!("{}:9", &att[..0])).encode();
    assert_eq!(
        codes(&f.call(&fetch(&wrong_part)).await, "GetAttachment"),
        ["ErrorInvalidIdMalformed"]
    );
}
