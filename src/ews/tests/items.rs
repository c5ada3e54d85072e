//! Item operations as exchangelib, Thunderbird and DavMail drive them.

use super::*;
use crate::store::FolderKind;

fn item_ids(root: &Element) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(e: &Element, out: &mut Vec<String>) {
        if e.name == "ItemId" || e.name == "MovedItemId" {
            out.push(e.attr("Id").unwrap_or("").to_string());
        }
        e.children.iter().for_each(|c| walk(c, out));
    }
    walk(root, &mut out);
    out
}

fn get(ids: &[&str], extra: &str) -> String {
    let ids: String = ids
        .iter()
        .map(|i| format!(r#"<t:ItemId Id="{i}"/>"#))
        .collect();
    format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>{extra}</m:ItemShape><m:ItemIds>{ids}</m:ItemIds></m:GetItem>"#
    )
}

const FIND_INBOX: &str = r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="message:IsRead"/></t:AdditionalProperties></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="10" Offset="0" BasePoint="Beginning"/><m:SortOrder><t:FieldOrder Order="Descending"><t:FieldURI FieldURI="item:DateTimeReceived"/></t:FieldOrder></m:SortOrder><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>"#;

#[tokio::test]
async fn find_item_pages_sorts_and_filters() {
    let f = Fixture::new().await;
    for i in 0..12 {
        deliver(
            &f,
            FolderKind::Inbox,
            &mail(&format!("note {i:02}"), "carol@x.test"),
            1_800_000_000_000 + i * 1000,
            &[],
        )
        .await;
    }
    let root = f.call(FIND_INBOX).await;
    let msg = &messages(&root, "FindItem")[0];
    let rf = msg.child("RootFolder").unwrap();
    assert_eq!(rf.attr("TotalItemsInView"), Some("12"));
    assert_eq!(rf.attr("IncludesLastItemInRange"), Some("false"));
    let subjects: Vec<&str> = rf
        .child("Items")
        .unwrap()
        .children
        .iter()
        .map(|m| m.child_text("Subject").unwrap())
        .collect();
    assert_eq!(subjects.len(), 10);
    assert_eq!(subjects[0], "note 11", "newest first");

    // Without a sort or restriction only the page is read: the same answers.
    let unsorted = |view: &str| {
        let sorted_start = FIND_INBOX.find("<m:IndexedPageItemView").unwrap();
        let sorted_end = FIND_INBOX.find("<m:ParentFolderIds>").unwrap();
        format!(
            "{}{view}{}",
            &FIND_INBOX[..sorted_start],
            &FIND_INBOX[sorted_end..]
        )
    };
    let page = |root: &Element| {
        let rf = messages(root, "FindItem")[0].child("RootFolder").unwrap();
        let subjects: Vec<String> = rf
            .child("Items")
            .unwrap()
            .children
            .iter()
            .map(|m| m.child_text("Subject").unwrap().to_string())
            .collect();
        let attr = |k| rf.attr(k).unwrap_or("").to_string();
        (
            subjects,
            attr("TotalItemsInView"),
            attr("IncludesLastItemInRange"),
        )
    };
    let views = [
        (
            r#"<m:IndexedPageItemView MaxEntriesReturned="4" Offset="3" BasePoint="Beginning"/>"#,
            8..=11,
            "false",
        ),
        (
            r#"<m:IndexedPageItemView MaxEntriesReturned="2" Offset="0" BasePoint="End"/>"#,
            0..=1,
            "true",
        ),
        (
            r#"<m:FractionalPageItemView MaxEntriesReturned="100" Numerator="1" Denominator="2"/>"#,
            0..=5,
            "true",
        ),
        ("", 0..=11, "true"),
    ];
    for (view, notes, last) in views {
        let want: Vec<String> = notes.rev().map(|i| format!("note {i:02}")).collect();
        let got = page(&f.call(&unsorted(view)).await);
        let want_first = if view.contains("Offset=\"3\"") {
            (3..7).map(|i| format!("note {:02}", 11 - i)).collect()
        } else {
            want
        };
        assert_eq!(
            got,
            (want_first, "12".to_string(), last.to_string()),
            "{view}"
        );
    }

    let filtered = FIND_INBOX.replace("<m:ParentFolderIds>", r#"<m:Restriction><t:Contains ContainmentMode="Substring" ContainmentComparison="IgnoreCase"><t:FieldURI FieldURI="item:Subject"/><t:Constant Value="NOTE 0"/></t:Contains></m:Restriction><m:ParentFolderIds>"#);
    let root = f.call(&filtered).await;
    let rf = messages(&root, "FindItem")[0].child("RootFolder").unwrap();
    assert_eq!(
        rf.attr("TotalItemsInView"),
        Some("10"),
        "note 00 .. note 09"
    );

    let empty = FIND_INBOX.replace("inbox", "calendar");
    let root = f.call(&empty).await;
    let rf = messages(&root, "FindItem")[0]
        .child("RootFolder")
        .expect("an empty RootFolder still");
    assert_eq!(rf.attr("TotalItemsInView"), Some("0"));

    let bad = FIND_INBOX.replace(
        "<m:ParentFolderIds>",
        "<m:Restriction><t:Frob/></m:Restriction><m:ParentFolderIds>",
    );
    assert_eq!(
        codes(&f.call(&bad).await, "FindItem"),
        ["ErrorSchemaValidation"]
    );
}

#[tokio::test]
async fn get_item_with_exchangelib_fields_and_exact_mime() {
    let f = Fixture::new().await;
    let raw = mail("hello", "\"Carol C\" <carol@x.test>");
    let id = deliver(
        &f,
        FolderKind::Inbox,
        &raw,
        1_800_000_000_000,
        &["\\Seen", "Work"],
    )
    .await;
    let fields = [
        "item:Subject",
        "item:Body",
        "message:From",
        "message:ToRecipients",
        "message:IsRead",
        "item:Categories",
        "calendar:Start",
        "meeting:IsOutOfDate",
        "item:MimeContent",
        "item:InternetMessageHeaders",
        "item:UniqueBody",
        "item:TextBody",
        "item:ConversationId",
        "item:Flag",
    ];
    let extra: String = fields
        .iter()
        .map(|f| format!(r#"<t:FieldURI FieldURI="{f}"/>"#))
        .collect();
    let extra = format!(
        r#"<t:AdditionalProperties>{extra}<t:ExtendedFieldURI PropertyTag="0x0e23" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="3591" PropertyType="Integer"/></t:AdditionalProperties>"#
    );
    let root = f.call(&get(&[&id], &extra)).await;
    assert_eq!(codes(&root, "GetItem"), ["NoError"]);
    let m = messages(&root, "GetItem")[0]
        .path(&["Items", "Message"])
        .unwrap();
    assert_eq!(m.child_text("Subject"), Some("hello"));
    assert_eq!(m.child_text("IsRead"), Some("true"));
    assert_eq!(
        m.path(&["From", "Mailbox", "Name"])
            .map(|n| n.text.as_str()),
        Some("Carol C")
    );
    assert_eq!(
        m.path(&["Categories", "String"]).map(|n| n.text.as_str()),
        Some("Work")
    );
    let mime = base64::engine::general_purpose::STANDARD
        .decode(m.child_text("MimeContent").unwrap())
        .unwrap();
    assert_eq!(
        mime,
        raw.as_bytes(),
        "MimeContent is the stored message, byte for byte"
    );
    let body = m.child("Body").unwrap();
    assert_eq!(body.attr("BodyType"), Some("Text"));
    assert!(
        body.text.contains("body of hello") && !body.text.contains('\u{1}'),
        "XML-invalid characters dropped"
    );
    let ext: Vec<&str> = m
        .children_named("ExtendedProperty")
        .map(|p| p.child_text("Value").unwrap())
        .collect();
    assert_eq!(
        ext,
        ["1", "3"],
        "IMAP UID 1; PR_MESSAGE_FLAGS read+unmodified"
    );

    // One message per id, in order, errors in place.
    let foreign = crate::ews::ids::EwsId::Item("0190ffff".into()).encode();
    let root = f.call(&get(&[&id, "junk!", &foreign], "")).await;
    assert_eq!(
        codes(&root, "GetItem"),
        ["NoError", "ErrorInvalidIdMalformed", "ErrorItemNotFound"]
    );
}

#[tokio::test]
async fn thunderbird_parses_our_responses_with_its_own_crate() {
    use ews::get_item::GetItem;
    use ews::soap::Envelope;
    let f = Fixture::new().await;
    let id = deliver(
        &f,
        FolderKind::Inbox,
        &mail("tb", "carol@x.test"),
        1_800_000_000_000,
        &[],
    )
    .await;
    let extra = r#"<t:AdditionalProperties><t:FieldURI FieldURI="message:IsRead"/><t:FieldURI FieldURI="message:InternetMessageId"/><t:FieldURI FieldURI="message:From"/><t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="item:Size"/><t:FieldURI FieldURI="item:DateTimeSent"/><t:FieldURI FieldURI="item:HasAttachments"/><t:FieldURI FieldURI="item:InternetMessageHeaders"/></t:AdditionalProperties>"#;
    let (status, _, body) = f
        .raw(
            Some(&basic("alice@acme.test", PASSWORD)),
            &envelope("", &get(&[&id], extra)),
        )
        .await;
    assert_eq!(status, 200);
    let parsed =
        Envelope::<<GetItem as ews::Operation>::Response>::from_xml_document(body.as_bytes());
    assert!(parsed.is_ok(), "{parsed:?}\n{body}");
}

#[tokio::test]
async fn updates_moves_copies_deletes_and_conflicts() {
    let f = Fixture::new().await;
    let id = deliver(
        &f,
        FolderKind::Inbox,
        &mail("u", "carol@x.test"),
        1_800_000_000_000,
        &[],
    )
    .await;
    let read = |id: &str, key: &str, mode: &str| {
        format!(
            r#"<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="{mode}"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}"{key}/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="item:Flag"/><t:Message><t:Flag><t:FlagStatus>Flagged</t:FlagStatus></t:Flag></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
        )
    };
    let root = f.call(&read(&id, "", "AlwaysOverwrite")).await;
    assert_eq!(codes(&root, "UpdateItem"), ["NoError"]);
    let inbox = f.folder(FolderKind::Inbox).await;
    let metas = f.world.store.messages(inbox.id, 1, u32::MAX).await.unwrap();
    assert_eq!(
        metas[0].flags,
        ["\\Flagged", "\\Seen"],
        "IMAP sees the same flags"
    );
    // A stale ChangeKey conflicts unless the client overwrites.
    let stale = r#" ChangeKey="1-0000000000000000""#;
    assert_eq!(
        codes(
            &f.call(&read(&id, stale, "AutoResolve")).await,
            "UpdateItem"
        ),
        ["ErrorIrresolvableConflict"]
    );
    let fresh = format!(r#" ChangeKey="{}""#, metas[0].change_key());
    assert_eq!(
        codes(
            &f.call(&read(&id, &fresh, "AutoResolve")).await,
            "UpdateItem"
        ),
        ["NoError"]
    );

    let copy = format!(
        r#"<m:CopyItem ReturnNewItemIds="true"><m:ToFolderId><t:DistinguishedFolderId Id="archive"/></m:ToFolderId><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:CopyItem>"#
    );
    let root = f.call(&copy).await;
    assert_eq!(codes(&root, "CopyItem"), ["NoError"]);
    let copied = item_ids(&root)[0].clone();
    assert_ne!(copied, id);
    let mv = format!(
        r#"<m:MoveItem><m:ToFolderId><t:DistinguishedFolderId Id="drafts"/></m:ToFolderId><m:ItemIds><t:ItemId Id="{copied}"/></m:ItemIds></m:MoveItem>"#
    );
    let root = f.call(&mv).await;
    let moved = item_ids(&root)[0].clone();
    assert_eq!(
        codes(&f.call(&get(&[&copied], "")).await, "GetItem"),
        ["ErrorItemNotFound"],
        "a move makes a new item"
    );

    let trash = format!(
        r#"<m:DeleteItem DeleteType="MoveToDeletedItems"><m:ItemIds><t:ItemId Id="{moved}"/></m:ItemIds></m:DeleteItem>"#
    );
    assert_eq!(codes(&f.call(&trash).await, "DeleteItem"), ["NoError"]);
    let deleted = f.folder(FolderKind::DeletedItems).await;
    assert_eq!(deleted.messages, 1);
    let hard = format!(
        r#"<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="{id}"/><t:ItemId Id="{id}"/></m:ItemIds></m:DeleteItem>"#
    );
    assert_eq!(
        codes(&f.call(&hard).await, "DeleteItem"),
        ["NoError", "ErrorItemNotFound"]
    );
}

#[tokio::test]
async fn mark_all_read_and_junk_as_thunderbird_sends_them() {
    let f = Fixture::new().await;
    let a = deliver(
        &f,
        FolderKind::Inbox,
        &mail("a", "c@x.test"),
        1_800_000_000_000,
        &[],
    )
    .await;
    deliver(
        &f,
        FolderKind::Inbox,
        &mail("b", "c@x.test"),
        1_800_000_001_000,
        &[],
    )
    .await;
    let all = r#"<m:MarkAllItemsAsRead><m:ReadFlag>true</m:ReadFlag><m:SuppressReadReceipts>true</m:SuppressReadReceipts><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:MarkAllItemsAsRead>"#;
    assert_eq!(codes(&f.call(all).await, "MarkAllItemsAsRead"), ["NoError"]);
    let inbox = f.folder(FolderKind::Inbox).await;
    assert_eq!(inbox.unseen, 0);
    let junk = format!(
        r#"<m:MarkAsJunk IsJunk="true" MoveItem="true"><m:ItemIds><t:ItemId Id="{a}"/></m:ItemIds></m:MarkAsJunk>"#
    );
    let root = f.call(&junk).await;
    assert_eq!(codes(&root, "MarkAsJunk"), ["NoError"]);
    let moved = item_ids(&root);
    assert_eq!(moved.len(), 1, "MovedItemId returned");
    let junk_folder = f.folder(FolderKind::JunkEmail).await;
    let metas = f
        .world
        .store
        .messages(junk_folder.id, 1, u32::MAX)
        .await
        .unwrap();
    assert!(metas[0].flags.contains(&"$Junk".to_string()));
}

#[tokio::test]
async fn create_item_saves_mime_and_field_messages_and_refuses_bad_mime() {
    let f = Fixture::new().await;
    let raw = "From: alice@acme.test\r\nSubject: draft\r\n\r\nbody\r\n";
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let mime = format!(
        r#"<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="drafts"/></m:SavedItemFolderId><m:Items><t:Message><t:MimeContent>{b64}</t:MimeContent><t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="3591" PropertyType="Integer"/><t:Value>9</t:Value></t:ExtendedProperty></t:Message></m:Items></m:CreateItem>"#
    );
    let root = f.call(&mime).await;
    assert_eq!(codes(&root, "CreateItem"), ["NoError"]);
    let id = item_ids(&root)[0].clone();
    let back = f
        .call(&get(
            &[&id],
            "<t:IncludeMimeContent>true</t:IncludeMimeContent>",
        ))
        .await;
    let m = messages(&back, "GetItem")[0]
        .path(&["Items", "Message"])
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(m.child_text("MimeContent").unwrap())
        .unwrap();
    assert_eq!(bytes, raw.as_bytes());

    let fields = r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:Subject>From fields</t:Subject><t:Body BodyType="Text">Hi</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>bob@acme.test</t:EmailAddress></t:Mailbox></t:ToRecipients><t:IsRead>false</t:IsRead></t:Message></m:Items></m:CreateItem>"#;
    let root = f.call(fields).await;
    assert_eq!(codes(&root, "CreateItem"), ["NoError"]);
    let id = item_ids(&root)[0].clone();
    let back = f.call(&get(&[&id], r#"<t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="message:ToRecipients"/><t:FieldURI FieldURI="item:IsDraft"/><t:FieldURI FieldURI="message:From"/></t:AdditionalProperties>"#)).await;
    let m = messages(&back, "GetItem")[0]
        .path(&["Items", "Message"])
        .unwrap();
    assert_eq!(m.child_text("Subject"), Some("From fields"));
    assert_eq!(m.child_text("IsDraft"), Some("true"));
    assert_eq!(
        m.path(&["From", "Mailbox", "EmailAddress"])
            .map(|e| e.text.as_str()),
        Some("alice@acme.test")
    );

    let bad = r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:MimeContent>!!!not base64</t:MimeContent></t:Message></m:Items></m:CreateItem>"#;
    assert_eq!(
        codes(&f.call(bad).await, "CreateItem"),
        ["ErrorCorruptData"]
    );
}

#[tokio::test]
async fn sync_folder_items_first_pass_then_feed_changes() {
    let f = Fixture::new().await;
    for i in 0..3 {
        deliver(
            &f,
            FolderKind::Inbox,
            &mail(&format!("s{i}"), "c@x.test"),
            1_800_000_000_000 + i,
            &[],
        )
        .await;
    }
    let sync = |state: &str, max: u32| {
        format!(
            r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId><m:SyncState>{state}</m:SyncState><m:MaxChangesReturned>{max}</m:MaxChangesReturned></m:SyncFolderItems>"#
        )
    };
    let kinds = |root: &Element| -> (Vec<String>, String, String) {
        let m = &messages(root, "SyncFolderItems")[0];
        let k = m
            .child("Changes")
            .unwrap()
            .children
            .iter()
            .map(|c| c.name.clone())
            .collect();
        (
            k,
            m.child_text("SyncState").unwrap().to_string(),
            m.child_text("IncludesLastItemInRange").unwrap().to_string(),
        )
    };
    let (k, state, last) = kinds(&f.call(&sync("", 2)).await);
    assert_eq!(
        (k, last.as_str()),
        (vec!["Create".to_string(), "Create".into()], "false")
    );
    let (k, state, last) = kinds(&f.call(&sync(&state, 2)).await);
    assert_eq!((k, last.as_str()), (vec!["Create".to_string()], "true"));
    let (k, state, _) = kinds(&f.call(&sync(&state, 10)).await);
    assert!(k.is_empty(), "nothing new");

    // Flag the first over the store (as IMAP would), expunge the second, deliver one.
    let store = &f.world.store;
    let inbox = f.folder(FolderKind::Inbox).await;
    store
        .store_flags(
            inbox.id,
            vec![1],
            crate::store::FlagOp::Add,
            vec!["\\Seen".into()],
            None,
        )
        .await
        .unwrap();
    store.expunge(inbox.id, vec![2]).await.unwrap();
    deliver(
        &f,
        FolderKind::Inbox,
        &mail("s3", "c@x.test"),
        1_800_000_009_000,
        &[],
    )
    .await;
    deliver(
        &f,
        FolderKind::Archive,
        &mail("elsewhere", "c@x.test"),
        1_800_000_009_000,
        &[],
    )
    .await;
    let (k, _, last) = kinds(&f.call(&sync(&state, 10)).await);
    assert_eq!(
        k,
        ["ReadFlagChange", "Delete", "Create"],
        "read state alone"
    );
    assert_eq!(last, "true");

    let root = f.call(&sync("bm9wZQ==", 10)).await;
    assert_eq!(
        codes(&root, "SyncFolderItems"),
        ["ErrorInvalidSyncStateData"]
    );
    let other = sync(&state, 10).replace("inbox", "archive");
    assert_eq!(
        codes(&f.call(&other).await, "SyncFolderItems"),
        ["ErrorInvalidSyncStateData"],
        "a state belongs to its folder"
    );
}

#[tokio::test]
async fn sending_hands_the_message_to_submission_with_bcc_outside_mime() {
    let f = Fixture::new().await;
    // Thunderbird: MimeContent, SendOnly, Bcc beside the MIME.
    let raw = "From: alice@acme.test\r\nTo: bob@acme.test\r\nBcc: hidden@x.test\r\nSubject: tb\r\n\r\nhi\r\n";
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let tb = format!(
        r#"<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:Message><t:MimeContent>{b64}</t:MimeContent><t:BccRecipients><t:Mailbox><t:EmailAddress>carol@x.test</t:EmailAddress></t:Mailbox></t:BccRecipients></t:Message></m:Items></m:CreateItem>"#
    );
    let root = f.call(&tb).await;
    assert_eq!(codes(&root, "CreateItem"), ["NoError"]);
    assert!(messages(&root, "CreateItem")[0].child("Items").is_some());
    // exchangelib: fields, SendAndSaveCopy.
    let xl = r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId><m:Items><t:Message><t:Subject>xl</t:Subject><t:Body BodyType="Text">hello</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>bob@acme.test</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#;
    assert_eq!(codes(&f.call(xl).await, "CreateItem"), ["NoError"]);
    let sent = f.sent.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let (rcpts, message, copy) = &sent[0];
    assert_eq!(rcpts, &["bob@acme.test", "hidden@x.test", "carol@x.test"]);
    let text = String::from_utf8_lossy(message);
    assert!(!text.to_ascii_lowercase().contains("bcc:"), "{text}");
    assert!(text.contains("Subject: tb"));
    assert!(!copy, "SendOnly keeps no copy");
    assert!(sent[1].2, "SendAndSaveCopy keeps one");
    assert!(String::from_utf8_lossy(&sent[1].1).contains("Subject: xl"));

    let refused = xl.replace("bob@acme.test", "nobody@acme.test");
    let root = f.call(&refused).await;
    assert_eq!(codes(&root, "CreateItem"), ["ErrorInvalidRecipients"]);

    // A saved draft sent with SendItem goes, and leaves Drafts.
    let draft = r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:Subject>later</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>bob@acme.test</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#;
    let id = item_ids(&f.call(draft).await)[0].clone();
    let send = format!(
        r#"<m:SendItem SaveItemToFolder="true"><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:SendItem>"#
    );
    assert_eq!(codes(&f.call(&send).await, "SendItem"), ["NoError"]);
    assert_eq!(f.sent.0.lock().unwrap().len(), 3);
    assert_eq!(
        codes(&f.call(&get(&[&id], "")).await, "GetItem"),
        ["ErrorItemNotFound"]
    );
}

#[test]
fn bcc_is_cut_with_its_continuation_lines() {
    let raw = b"To: a@x\r\nBcc: b@x,\r\n  c@x\r\nSubject: s\r\n\r\nBcc: in body stays\r\n";
    let out = crate::ews::ops::compose::strip_bcc(raw);
    assert_eq!(out, b"To: a@x\r\nSubject: s\r\n\r\nBcc: in body stays\r\n");
}

#[tokio::test]
async fn a_draft_is_edited_in_place_and_keeps_its_id() {
    let f = Fixture::new().await;
    let draft = r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:Subject>first</t:Subject><t:Body BodyType="Text">one</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>bob@acme.test</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#;
    let id = item_ids(&f.call(draft).await)[0].clone();
    let sync = |state: &str| {
        format!(
            r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="drafts"/></m:SyncFolderId><m:SyncState>{state}</m:SyncState><m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>"#
        )
    };
    let first = f.call(&sync("")).await;
    let state = messages(&first, "SyncFolderItems")[0]
        .child_text("SyncState")
        .unwrap()
        .to_string();
    let update = format!(
        r#"<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AutoResolve"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Subject"/><t:Message><t:Subject>second</t:Subject></t:Message></t:SetItemField><t:AppendToItemField><t:FieldURI FieldURI="message:ToRecipients"/><t:Message><t:ToRecipients><t:Mailbox><t:EmailAddress>carol@x.test</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></t:AppendToItemField><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
    );
    let root = f.call(&update).await;
    assert_eq!(codes(&root, "UpdateItem"), ["NoError"]);
    assert_eq!(item_ids(&root)[0], id, "the same item");
    let after = f.call(&sync(&state)).await;
    let changes = messages(&after, "SyncFolderItems")[0]
        .child("Changes")
        .unwrap();
    let kinds: Vec<&str> = changes.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        kinds,
        ["Update"],
        "an edited draft is an update to a syncing client"
    );
    let fields = r#"<t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="message:ToRecipients"/><t:FieldURI FieldURI="message:IsRead"/><t:FieldURI FieldURI="item:IsDraft"/></t:AdditionalProperties>"#;
    let back = f.call(&get(&[&id], fields)).await;
    let m = messages(&back, "GetItem")[0]
        .path(&["Items", "Message"])
        .unwrap();
    assert_eq!(m.child_text("Subject"), Some("second"));
    assert_eq!(m.child("ToRecipients").unwrap().children.len(), 2);
    assert_eq!(m.child_text("IsRead"), Some("true"));
    assert_eq!(m.child_text("IsDraft"), Some("true"));
    // A received message is not rewritten.
    let received = deliver(&f, FolderKind::Inbox, &mail("in", "c@x.test"), 1, &[]).await;
    let edit = update.replace(&id, &received);
    assert_eq!(
        codes(&f.call(&edit).await, "UpdateItem"),
        ["ErrorInvalidPropertySet"]
    );
}

/// A sync state whose feed position is older than what the store kept of the
/// feed (`store::housekeeping` pruned it) is ErrorInvalidSyncStateData, as
/// Exchange answers a state it no longer honours; a sync without a state then
/// brings every item, and a state taken after the prune goes on incrementally.
#[tokio::test]
async fn a_sync_state_older_than_the_kept_feed_starts_over() {
    let f = Fixture::new().await;
    let sync = |state: &str| {
        format!(
            r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId><m:SyncState>{state}</m:SyncState><m:MaxChangesReturned>100</m:MaxChangesReturned></m:SyncFolderItems>"#
        )
    };
    let changes = |root: &Element| -> (usize, String) {
        let m = &messages(root, "SyncFolderItems")[0];
        (
            m.child("Changes").unwrap().children.len(),
            m.child_text("SyncState").unwrap().to_string(),
        )
    };
    for i in 0..3 {
        let m = mail(&format!("p{i}"), "c@x.test");
        deliver(&f, FolderKind::Inbox, &m, 1_800_000_000_000 + i, &[]).await;
    }
    let (n, old) = changes(&f.call(&sync("")).await);
    assert_eq!(n, 3);
    for i in 3..5 {
        let m = mail(&format!("p{i}"), "c@x.test");
        deliver(&f, FolderKind::Inbox, &m, 1_800_000_000_000 + i, &[]).await;
    }
    let inbox = f.folder(FolderKind::Inbox).await;
    let later = crate::clock::now_ms() + 3_600_000;
    let pruned = f
        .world
        .store
        .prune_feed(&inbox.mailbox_id, later, 1, 100)
        .await
        .unwrap();
    assert!(pruned > 0);

    assert_eq!(
        codes(&f.call(&sync(&old)).await, "SyncFolderItems"),
        ["ErrorInvalidSyncStateData"]
    );
    let (n, fresh) = changes(&f.call(&sync("")).await);
    assert_eq!(n, 5, "a sync without a state brings every item");
    let m = mail("p5", "c@x.test");
    deliver(&f, FolderKind::Inbox, &m, 1_800_000_000_005, &[]).await;
    let (n, _) = changes(&f.call(&sync(&fresh)).await);
    assert_eq!(n, 1, "a state above the horizon continues");
}
