//! What exchangelib's item tests exercise beyond flags: properties kept beside
//! the message, responses (reply, forward) and attachments added and removed.

use super::*;
use crate::store::FolderKind;

fn first_item_id(root: &Element) -> String {
    fn walk(e: &Element) -> Option<String> {
        if e.name == "ItemId" {
            return e.attr("Id").map(str::to_string);
        }
        e.children.iter().find_map(walk)
    }
    walk(root).expect("an ItemId")
}

fn item<'e>(root: &'e Element, op: &str) -> &'e Element {
    messages(root, op)[0]
        .child("Items")
        .unwrap()
        .children
        .first()
        .unwrap()
}

const TAGS: &str = r#"<t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="Tags" PropertyType="StringArray"/>"#;
const TAGS_BY_GUID: &str = r#"<t:ExtendedFieldURI PropertySetId="00020329-0000-0000-C000-000000000046" PropertyName="Tags" PropertyType="StringArray"/>"#;

fn get_shape(id: &str) -> String {
    format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Sensitivity"/><t:FieldURI FieldURI="item:ReminderIsSet"/><t:FieldURI FieldURI="item:ReminderMinutesBeforeStart"/><t:FieldURI FieldURI="message:IsResponseRequested"/><t:FieldURI FieldURI="message:InReplyTo"/><t:FieldURI FieldURI="item:InReplyTo"/>{TAGS_BY_GUID}<t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/></t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:GetItem>"#
    )
}

#[tokio::test]
async fn properties_are_created_read_filtered_updated_and_copied() {
    let f = Fixture::new().await;
    let create = format!(
        r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Item><t:Subject>props</t:Subject><t:Sensitivity>Confidential</t:Sensitivity><t:InReplyTo>&lt;parent@x&gt;</t:InReplyTo><t:ReminderIsSet>true</t:ReminderIsSet><t:ReminderMinutesBeforeStart>251</t:ReminderMinutesBeforeStart><t:ExtendedProperty>{TAGS}<t:Values><t:Value>a</t:Value><t:Value>b c</t:Value></t:Values></t:ExtendedProperty><t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/><t:Value>1</t:Value></t:ExtendedProperty></t:Item></m:Items></m:CreateItem>"#
    );
    let root = f.call(&create).await;
    assert_eq!(
        codes(&root, "CreateItem"),
        ["NoError"],
        "a generic t:Item too"
    );
    let id = first_item_id(&root);
    let got = f.call(&get_shape(&id)).await;
    let m = item(&got, "GetItem");
    assert_eq!(m.child_text("Sensitivity"), Some("Confidential"));
    assert_eq!(m.child_text("ReminderIsSet"), Some("true"));
    assert_eq!(m.child_text("ReminderMinutesBeforeStart"), Some("251"));
    assert_eq!(m.child_text("InReplyTo"), Some("<parent@x>"));
    let ext: Vec<&Element> = m.children_named("ExtendedProperty").collect();
    assert_eq!(ext.len(), 2);
    let values: Vec<&str> = ext[0]
        .child("Values")
        .unwrap()
        .children
        .iter()
        .map(|v| v.text.as_str())
        .collect();
    assert_eq!(
        values,
        ["a", "b c"],
        "the set named by GUID is the same set"
    );
    assert_eq!(ext[1].child_text("Value"), Some("1"), "flag complete kept");

    // A restriction on a stored field finds it; another value does not.
    let find = |value: &str| {
        format!(
            r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="item:ReminderMinutesBeforeStart"/><t:FieldURIOrConstant><t:Constant Value="{value}"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id="drafts"/></m:ParentFolderIds></m:FindItem>"#
        )
    };
    let total = |root: &Element| {
        messages(root, "FindItem")[0]
            .child("RootFolder")
            .unwrap()
            .attr("TotalItemsInView")
            .unwrap()
            .to_string()
    };
    assert_eq!(total(&f.call(&find("251")).await), "1");
    assert_eq!(total(&f.call(&find("15")).await), "0");

    // UpdateItem sets, deletes and is refused a bad value, with a new ChangeKey.
    let change_key = |root: &Element| {
        fn walk(e: &Element) -> Option<String> {
            if e.name == "ItemId" {
                return e.attr("ChangeKey").map(str::to_string);
            }
            e.children.iter().find_map(walk)
        }
        walk(root).unwrap()
    };
    let before = change_key(&got);
    let update = |body: &str| {
        format!(
            r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}"/><t:Updates>{body}</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
        )
    };
    let root = f
        .call(&update(&format!(
            r#"<t:SetItemField><t:FieldURI FieldURI="message:IsResponseRequested"/><t:Message><t:IsResponseRequested>true</t:IsResponseRequested></t:Message></t:SetItemField><t:DeleteItemField>{TAGS}</t:DeleteItemField><t:SetItemField><t:FieldURI FieldURI="item:Sensitivity"/><t:Message><t:Sensitivity>Private</t:Sensitivity></t:Message></t:SetItemField>"#
        )))
        .await;
    assert_eq!(codes(&root, "UpdateItem"), ["NoError"]);
    assert_ne!(change_key(&root), before);
    let got = f.call(&get_shape(&id)).await;
    let m = item(&got, "GetItem");
    assert_eq!(m.child_text("IsResponseRequested"), Some("true"));
    assert_eq!(m.child_text("Sensitivity"), Some("Private"));
    assert_eq!(m.children_named("ExtendedProperty").count(), 1, "Tags gone");
    let bad = f
        .call(&update(r#"<t:SetItemField><t:FieldURI FieldURI="item:ReminderIsSet"/><t:Message><t:ReminderIsSet>perhaps</t:ReminderIsSet></t:Message></t:SetItemField>"#))
        .await;
    assert_eq!(codes(&bad, "UpdateItem"), ["ErrorInvalidValueForProperty"]);

    // A copy carries the properties.
    let copy = f
        .call(&format!(
            r#"<m:CopyItem ReturnNewItemIds="true"><m:ToFolderId><t:DistinguishedFolderId Id="inbox"/></m:ToFolderId><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:CopyItem>"#
        ))
        .await;
    let copied = first_item_id(&copy);
    assert_ne!(copied, id);
    let got = f.call(&get_shape(&copied)).await;
    assert_eq!(
        item(&got, "GetItem").child_text("ReminderMinutesBeforeStart"),
        Some("251")
    );
}

#[tokio::test]
async fn a_reply_is_sent_threaded_and_marks_the_original() {
    let f = Fixture::new().await;
    let id = deliver(
        &f,
        FolderKind::Inbox,
        &mail("Plans", "carol@x.test"),
        1_800_000_000_000,
        &[],
    )
    .await;
    let reply = format!(
        r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:ReplyToItem><t:ReferenceItemId Id="{id}"/><t:NewBodyContent BodyType="Text">Sounds good</t:NewBodyContent></t:ReplyToItem></m:Items></m:CreateItem>"#
    );
    let root = f.call(&reply).await;
    assert_eq!(codes(&root, "CreateItem"), ["NoError"]);
    let sent = f.sent.0.lock().unwrap().pop().expect("one submission");
    assert_eq!(sent.0, ["carol@x.test"], "to the author");
    let raw = String::from_utf8(sent.1).unwrap();
    assert!(raw.contains("Subject: RE: Plans"), "{raw}");
    assert!(raw.contains("In-Reply-To: <Plans@x>"), "{raw}");
    assert!(raw.contains("References: <Plans@x>"), "{raw}");
    assert!(raw.contains("Sounds good"));
    assert!(raw.contains("-----Original Message-----"), "quoted");
    let inbox = f.folder(FolderKind::Inbox).await;
    let meta = f.world.store.messages(inbox.id, 1, 1).await.unwrap();
    assert!(meta[0].flags.iter().any(|f| f == "\\Answered"));
    // A forward saved as a draft needs no recipients yet; a bad reference fails.
    let forward = format!(
        r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:ForwardItem><t:ReferenceItemId Id="{id}"/></t:ForwardItem><t:ForwardItem><t:ReferenceItemId Id="AAAA"/></t:ForwardItem></m:Items></m:CreateItem>"#
    );
    let root = f.call(&forward).await;
    assert_eq!(
        codes(&root, "CreateItem"),
        ["NoError", "ErrorInvalidIdMalformed"]
    );
}

#[tokio::test]
async fn attachments_are_added_and_removed_under_the_same_item() {
    let f = Fixture::new().await;
    let id = deliver(
        &f,
        FolderKind::Drafts,
        &mail("Draft", "alice@acme.test"),
        1_800_000_000_000,
        &["\\Draft"],
    )
    .await;
    let create = format!(
        r#"<m:CreateAttachment><m:ParentItemId Id="{id}"/><m:Attachments><t:FileAttachment><t:Name>a.txt</t:Name><t:ContentType>text/plain</t:ContentType><t:Content>SGVsbG8=</t:Content></t:FileAttachment><t:ItemAttachment><t:Name>inner</t:Name><t:Message><t:Subject>Inner</t:Subject><t:Body BodyType="Text">x</t:Body></t:Message></t:ItemAttachment></m:Attachments></m:CreateAttachment>"#
    );
    let root = f.call(&create).await;
    assert_eq!(codes(&root, "CreateAttachment"), ["NoError", "NoError"]);
    let item_id = id.clone();
    let ids: Vec<String> = messages(&root, "CreateAttachment")
        .iter()
        .map(|m| {
            let a = &m.child("Attachments").unwrap().children[0];
            let id = a.child("AttachmentId").unwrap();
            assert_eq!(id.attr("RootItemId"), Some(item_id.as_str()));
            id.attr("Id").unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    let get = f
        .call(&format!(
            r#"<m:GetAttachment><m:AttachmentIds><t:AttachmentId Id="{}"/></m:AttachmentIds></m:GetAttachment>"#,
            ids[0]
        ))
        .await;
    let file = &messages(&get, "GetAttachment")[0]
        .child("Attachments")
        .unwrap()
        .children[0];
    assert_eq!(file.child_text("Content"), Some("SGVsbG8="));
    assert_eq!(file.child_text("Name"), Some("a.txt"));
    // Delete the file; the item attachment stays, the item keeps its id.
    let del = f
        .call(&format!(
            r#"<m:DeleteAttachment><m:AttachmentIds><t:AttachmentId Id="{}"/><t:AttachmentId Id="{}"/></m:AttachmentIds></m:DeleteAttachment>"#,
            ids[0], ids[0]
        ))
        .await;
    assert_eq!(
        codes(&del, "DeleteAttachment"),
        ["NoError", "ErrorInvalidAttachmentId"]
    );
    let root_id = messages(&del, "DeleteAttachment")[0]
        .child("RootItemId")
        .unwrap();
    assert_eq!(root_id.attr("RootItemId"), Some(id.as_str()));
    let got = f
        .call(&format!(
            r#"<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:GetItem>"#
        ))
        .await;
    let m = item(&got, "GetItem");
    let listed: Vec<&str> = m
        .child("Attachments")
        .unwrap()
        .children
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(listed, ["ItemAttachment"]);
    let bad = f
        .call(r#"<m:CreateAttachment><m:ParentItemId Id="AAAA"/><m:Attachments><t:FileAttachment><t:Name>x</t:Name><t:Content>eA==</t:Content></t:FileAttachment></m:Attachments></m:CreateAttachment>"#)
        .await;
    assert_eq!(codes(&bad, "CreateAttachment"), ["ErrorInvalidIdMalformed"]);
}

#[tokio::test]
async fn a_forward_carries_the_attachments_a_reply_leaves_out() {
    let f = Fixture::new().await;
    let with_file = "From: carol@x.test\r\nTo: alice@acme.test\r\nSubject: Report\r\nMessage-ID: <r@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf; name=q3.pdf\r\nContent-Disposition: attachment; filename=q3.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";
    let id = deliver(&f, FolderKind::Inbox, with_file, 1_800_000_000_000, &[]).await;
    for (element, carried) in [("ForwardItem", true), ("ReplyToItem", false)] {
        let op = format!(
            r#"<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:{element}><t:ToRecipients><t:Mailbox><t:EmailAddress>dave@x.test</t:EmailAddress></t:Mailbox></t:ToRecipients><t:ReferenceItemId Id="{id}"/></t:{element}></m:Items></m:CreateItem>"#
        );
        assert_eq!(codes(&f.call(&op).await, "CreateItem"), ["NoError"]);
        let sent = f.sent.0.lock().unwrap().pop().unwrap();
        let msg = crate::message::Message::parse(&sent.1);
        let names: Vec<Option<String>> =
            msg.attachments().into_iter().map(|a| a.file_name).collect();
        if carried {
            assert_eq!(names, [Some("q3.pdf".to_string())], "{element}");
            let a = &msg.attachments()[0];
            let part = msg.part(&a.path.0).unwrap();
            assert_eq!(part.decoded(msg.raw()).unwrap(), b"%PDF-");
        } else {
            assert!(names.is_empty(), "{element}");
        }
    }
    let inbox = f.folder(FolderKind::Inbox).await;
    let meta = f.world.store.messages(inbox.id, 1, 1).await.unwrap();
    for flag in ["$Forwarded", "\\Answered"] {
        assert!(meta[0].flags.iter().any(|x| x == flag), "{flag}");
    }
}

#[tokio::test]
async fn a_sent_copy_keeps_the_properties_of_what_was_sent() {
    let f = Fixture::new().await;
    let ext = format!(
        r#"<t:Sensitivity>Private</t:Sensitivity><t:ExtendedProperty>{TAGS}<t:Values><t:Value>x</t:Value></t:Values></t:ExtendedProperty><t:ToRecipients><t:Mailbox><t:EmailAddress>bob@acme.test</t:EmailAddress></t:Mailbox></t:ToRecipients>"#
    );
    let send = format!(
        r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:Message><t:Subject>kept</t:Subject>{ext}</t:Message></m:Items></m:CreateItem>"#
    );
    assert_eq!(codes(&f.call(&send).await, "CreateItem"), ["NoError"]);
    let draft = send.replace("SendAndSaveCopy", "SaveOnly");
    let id = first_item_id(&f.call(&draft).await);
    let send_item = format!(
        r#"<m:SendItem SaveItemToFolder="true"><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:SendItem>"#
    );
    assert_eq!(codes(&f.call(&send_item).await, "SendItem"), ["NoError"]);
    let only = send.replace("SendAndSaveCopy", "SendOnly");
    assert_eq!(codes(&f.call(&only).await, "CreateItem"), ["NoError"]);
    let copies = f.sent.1.lock().unwrap().clone();
    assert_eq!(copies.len(), 2, "SendOnly asks for no copy");
    for (copy, how) in copies.iter().zip(["CreateItem", "SendItem"]) {
        let props = crate::ews::props::ItemProps::new(copy.properties.clone());
        assert_eq!(
            props.field_text("item:Sensitivity").as_deref(),
            Some("Private"),
            "{how}"
        );
        assert_eq!(copy.properties.len(), 2, "{how}: {:?}", copy.properties);
    }
    // A property the server cannot keep is refused before anything is sent.
    let bad = send.replace(
        r#"PropertyType="StringArray""#,
        r#"PropertyType="Nonsense""#,
    );
    let before = f.sent.0.lock().unwrap().len();
    assert_ne!(codes(&f.call(&bad).await, "CreateItem"), ["NoError"]);
    assert_eq!(f.sent.0.lock().unwrap().len(), before, "nothing sent");
}
