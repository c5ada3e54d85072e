//! Thunderbird's request sequences (reference: ews-client-behaviour.md §3), each
//! response parsed with Thunderbird's own parser (the `ews` crate), which refuses
//! anything it does not expect.

use ews::Operation;
use ews::soap::Envelope;

use super::*;
use crate::store::FolderKind;

/// Sends `op` as Thunderbird would (RequestServerVersion only) and parses the
/// answer with Thunderbird's parser for `O`; asserts every message succeeded.
async fn tb<O: Operation>(f: &Fixture, op: &str) -> Element {
    let header = r#"<t:RequestServerVersion Version="Exchange2013_SP1"/>"#;
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header>{header}</soap:Header><soap:Body>{op}</soap:Body></soap:Envelope>"#
    );
    let (status, _, text) = f
        .raw(Some(&basic("alice@acme.test", PASSWORD)), &body)
        .await;
    assert_eq!(status, 200);
    let parsed = Envelope::<O::Response>::from_xml_document(text.as_bytes());
    assert!(
        parsed.is_ok(),
        "Thunderbird cannot parse: {parsed:?}\n{text}"
    );
    assert!(!text.contains(r#"ResponseClass="Error""#), "{text}");
    parse(text.as_bytes()).unwrap()
}

fn first_id(root: &Element, name: &str) -> String {
    fn walk<'e>(e: &'e Element, name: &str) -> Option<&'e Element> {
        if e.name == name {
            return Some(e);
        }
        e.children.iter().find_map(|c| walk(c, name))
    }
    walk(root, name)
        .and_then(|e| e.attr("Id"))
        .unwrap_or_else(|| panic!("no {name}"))
        .to_string()
}

#[tokio::test]
async fn account_setup_folder_sync_and_message_list() {
    let f = Fixture::new().await;
    deliver(
        &f,
        FolderKind::Inbox,
        &mail("first", "carol@x.test"),
        1_800_000_000_000,
        &[],
    )
    .await;
    // Account check: GetFolder msgfolderroot, IdOnly.
    tb::<ews::get_folder::GetFolder>(&f, r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></m:FolderIds></m:GetFolder>"#).await;
    // The well-known folder batch (archive may be missing; here it exists).
    let batch: String = [
        "msgfolderroot",
        "inbox",
        "deleteditems",
        "drafts",
        "outbox",
        "sentitems",
        "junkemail",
        "archive",
    ]
    .iter()
    .map(|n| format!(r#"<t:DistinguishedFolderId Id="{n}"/>"#))
    .collect();
    tb::<ews::get_folder::GetFolder>(&f, &format!(r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>{batch}</m:FolderIds></m:GetFolder>"#)).await;
    // Hierarchy, then the created folders with AllProperties.
    let h = tb::<ews::sync_folder_hierarchy::SyncFolderHierarchy>(&f, r#"<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:SyncFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:SyncFolderId></m:SyncFolderHierarchy>"#).await;
    let inbox = first_id(&h, "FolderId");
    tb::<ews::get_folder::GetFolder>(&f, &format!(r#"<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds><t:FolderId Id="{inbox}"/></m:FolderIds></m:GetFolder>"#)).await;
    // Message list and the message itself.
    let s = tb::<ews::sync_folder_items::SyncFolderItems>(&f, r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId><m:MaxChangesReturned>100</m:MaxChangesReturned></m:SyncFolderItems>"#).await;
    let item = first_id(&s, "ItemId");
    let fields = [
        "message:IsRead",
        "message:InternetMessageId",
        "message:From",
        "message:ReplyTo",
        "message:Sender",
        "message:ToRecipients",
        "message:CcRecipients",
        "message:BccRecipients",
        "message:References",
        "item:InternetMessageHeaders",
        "item:DateTimeSent",
        "item:Subject",
        "item:HasAttachments",
        "item:Importance",
        "item:Size",
        "item:Preview",
        "item:Flag",
    ];
    let extra: String = fields
        .iter()
        .map(|f| format!(r#"<t:FieldURI FieldURI="{f}"/>"#))
        .collect();
    tb::<ews::get_item::GetItem>(&f, &format!(r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>false</t:IncludeMimeContent><t:AdditionalProperties>{extra}</t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="{item}"/></m:ItemIds></m:GetItem>"#)).await;
    tb::<ews::get_item::GetItem>(&f, &format!(r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds><t:ItemId Id="{item}"/></m:ItemIds></m:GetItem>"#)).await;
}

#[tokio::test]
async fn flags_read_state_junk_copy_move_and_delete() {
    let f = Fixture::new().await;
    let a = deliver(&f, FolderKind::Inbox, &mail("a", "carol@x.test"), 1, &[]).await;
    let b = deliver(&f, FolderKind::Inbox, &mail("b", "carol@x.test"), 2, &[]).await;
    tb::<ews::update_item::UpdateItem>(&f, &format!(r#"<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange><t:ItemId Id="{a}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#)).await;
    tb::<ews::update_item::UpdateItem>(&f, &format!(r#"<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange><t:ItemId Id="{a}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Flag"/><t:Message><t:Flag><t:FlagStatus>Flagged</t:FlagStatus></t:Flag></t:Message></t:SetItemField><t:SetItemField><t:ExtendedFieldURI PropertyTag="4240" PropertyType="Integer"/><t:Message><t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="4240" PropertyType="Integer"/><t:Value>2</t:Value></t:ExtendedProperty></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#)).await;
    tb::<ews::mark_all_read::MarkAllItemsAsRead>(&f, r#"<m:MarkAllItemsAsRead><m:ReadFlag>true</m:ReadFlag><m:SuppressReadReceipts>true</m:SuppressReadReceipts><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:MarkAllItemsAsRead>"#).await;
    let copied = tb::<ews::copy_item::CopyItem>(&f, &format!(r#"<m:CopyItem ReturnNewItemIds="true"><m:ToFolderId><t:DistinguishedFolderId Id="archive"/></m:ToFolderId><m:ItemIds><t:ItemId Id="{a}"/></m:ItemIds></m:CopyItem>"#)).await;
    let copy = first_id(&copied, "ItemId");
    tb::<ews::move_item::MoveItem>(&f, &format!(r#"<m:MoveItem ReturnNewItemIds="true"><m:ToFolderId><t:DistinguishedFolderId Id="deleteditems"/></m:ToFolderId><m:ItemIds><t:ItemId Id="{copy}"/></m:ItemIds></m:MoveItem>"#)).await;
    tb::<ews::mark_as_junk::MarkAsJunk>(&f, &format!(r#"<m:MarkAsJunk IsJunk="true" MoveItem="true"><m:ItemIds><t:ItemId Id="{b}"/></m:ItemIds></m:MarkAsJunk>"#)).await;
    tb::<ews::delete_item::DeleteItem>(&f, &format!(r#"<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="{a}"/></m:ItemIds></m:DeleteItem>"#)).await;
}

#[tokio::test]
async fn saving_a_draft_and_folder_operations() {
    let f = Fixture::new().await;
    let mime = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "From: alice@acme.test\r\nSubject: draft\r\n\r\nbody\r\n",
    );
    tb::<ews::create_item::CreateItem>(&f, &format!(r#"<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="drafts"/></m:SavedItemFolderId><m:Items><t:Message><t:MimeContent>{mime}</t:MimeContent><t:IsRead>true</t:IsRead><t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="3591" PropertyType="Integer"/><t:Value>9</t:Value></t:ExtendedProperty></t:Message></m:Items></m:CreateItem>"#)).await;
    let made = tb::<ews::create_folder::CreateFolder>(&f, r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderId><m:Folders><t:Folder><t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>Lists</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"#).await;
    let lists = first_id(&made, "FolderId");
    tb::<ews::update_folder::UpdateFolder>(&f, &format!(r#"<m:UpdateFolder><m:FolderChanges><t:FolderChange><t:FolderId Id="{lists}"/><t:Updates><t:SetFolderField><t:FieldURI FieldURI="folder:DisplayName"/><t:Folder><t:DisplayName>Lists 2</t:DisplayName></t:Folder></t:SetFolderField></t:Updates></t:FolderChange></m:FolderChanges></m:UpdateFolder>"#)).await;
    let copied = tb::<ews::copy_folder::CopyFolder>(&f, &format!(r#"<m:CopyFolder><m:ToFolderId><t:DistinguishedFolderId Id="archive"/></m:ToFolderId><m:FolderIds><t:FolderId Id="{lists}"/></m:FolderIds></m:CopyFolder>"#)).await;
    let copy = first_id(&copied, "FolderId");
    tb::<ews::move_folder::MoveFolder>(&f, &format!(r#"<m:MoveFolder><m:ToFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:ToFolderId><m:FolderIds><t:FolderId Id="{lists}"/></m:FolderIds></m:MoveFolder>"#)).await;
    tb::<ews::empty_folder::EmptyFolder>(&f, &format!(r#"<m:EmptyFolder DeleteType="HardDelete" DeleteSubFolders="false"><m:FolderIds><t:FolderId Id="{copy}"/></m:FolderIds></m:EmptyFolder>"#)).await;
    tb::<ews::delete_folder::DeleteFolder>(&f, &format!(r#"<m:DeleteFolder DeleteType="HardDelete"><m:FolderIds><t:FolderId Id="{copy}"/><t:FolderId Id="{lists}"/></m:FolderIds></m:DeleteFolder>"#)).await;
    let names: Vec<String> = f
        .world
        .store
        .folders(&f.world.alice)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert!(!names.iter().any(|n| n.contains("Lists")), "{names:?}");
}
