//! Creating, sending and filing items: CreateItem (save, send, response objects),
//! SendItem, DeleteItem, MoveItem, CopyItem, ArchiveItem, MarkAllItemsAsRead and
//! MarkAsJunk (UpdateItem is `update`, message building `compose`). Every change is
//! a store write of the same message IMAP sees, so IMAP IDLE and EWS sync both
//! observe it through the change feed.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::compose::{compose, initial_flags, recipients, strip_bcc};
use super::folder::{Trees, open_folder};
use super::item::{Found, load_props, message_at, open_item};
use super::respond::{self, Kind};
use super::{Reply, ids, truthy};
use crate::events::audit::AuditProtocol;
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::item::{keyword_to_category, write_attachment_list, write_item_id};
use crate::ews::props;
use crate::ews::xml::{Element, Xml};
use crate::store::{FlagOp, FolderKind, MessageMeta, NewMessage, Refused};
use crate::submission::{SavedCopy, Submission, SubmitError, Submitted};

/// A store failure as EWS answers it: a store that cannot be reached is
/// temporary (clients retry), anything else is the server's fault.
pub(super) fn store_error(e: crate::store::StoreError) -> ResponseCode {
    tracing::warn!(error = %e, "EWS: store error");
    match e {
        crate::store::StoreError::Unavailable(_) => ResponseCode::ErrorMailboxStoreUnavailable,
        _ => ResponseCode::ErrorInternalServerError,
    }
}

pub(super) fn refused(r: Refused) -> ResponseCode {
    match r {
        Refused::OverQuota => ResponseCode::ErrorQuotaExceeded,
        Refused::NoSuchFolder => ResponseCode::ErrorFolderNotFound,
    }
}

/// Writes `m:Items` holding one ItemId (or nothing).
pub(super) fn write_items(xml: &mut Xml, meta: Option<&MessageMeta>) {
    xml.open("m:Items", &[]);
    if let Some(m) = meta {
        xml.open("t:Message", &[]);
        write_item_id(xml, m);
        xml.close("t:Message");
    }
    xml.close("m:Items");
}

/// The store folder a folder element names, checked for `action`.
pub(super) async fn store_folder(
    ctx: &Context<'_>,
    trees: &mut Trees,
    el: &Element,
    action: MailboxAction,
) -> Result<crate::store::Folder, ResponseCode> {
    let (_, view) = open_folder(ctx, trees, el, action).await?;
    view.store.ok_or(ResponseCode::ErrorInvalidOperation)
}

/// A default folder of the request's own mailbox as a folder element.
pub(super) fn distinguished(kind: FolderKind) -> Element {
    Element {
        name: "DistinguishedFolderId".into(),
        attrs: vec![("Id".into(), kind.as_str().into())],
        ..Element::default()
    }
}

pub(super) fn submit_error(e: SubmitError) -> (ResponseCode, String) {
    let code = match &e {
        SubmitError::SendAsDenied(_) => ResponseCode::ErrorSendAsDenied,
        SubmitError::NoRecipients | SubmitError::Recipient(..) => {
            ResponseCode::ErrorInvalidRecipients
        }
        SubmitError::TooLarge => ResponseCode::ErrorMessageSizeExceeded,
        SubmitError::Storage => ResponseCode::ErrorInternalServerError,
    };
    (code, e.to_string())
}

/// Sends `raw` (Bcc removed) to its recipients through the submission path.
pub(super) async fn send(
    ctx: &Context<'_>,
    raw: &[u8],
    msg: Option<&Element>,
    save_copy: Option<SavedCopy>,
) -> Result<Submitted, (ResponseCode, String)> {
    let no_mailbox = ResponseCode::ErrorMissingEmailAddress;
    let actor = ctx
        .actor()
        .ok_or((no_mailbox, super::default_text(no_mailbox).to_string()))?;
    let submission = Submission {
        actor,
        recipients: recipients(raw, msg),
        message: strip_bcc(raw),
        save_copy,
        protocol: AuditProtocol::Ews,
        source_ip: ctx.ip,
    };
    ctx.ews
        .submit
        .submit(submission)
        .await
        .map_err(submit_error)
}

/// CreateItem of messages. `SaveOnly` stores each in `SavedItemFolderId` (default
/// Drafts); `SendOnly` and `SendAndSaveCopy` send it as an SMTP submission would
/// (the copy, with the item's categories, goes to `SavedItemFolderId` or else
/// Sent Items).
pub async fn create_item(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let disposition = op.attr("MessageDisposition").unwrap_or("SaveOnly");
    let mut trees = Trees::default();
    let target = match op.child("SavedItemFolderId") {
        Some(el) => store_folder(ctx, &mut trees, el, MailboxAction::Create).await,
        None => {
            store_folder(
                ctx,
                &mut trees,
                &distinguished(FolderKind::Drafts),
                MailboxAction::Create,
            )
            .await
        }
    };
    let mut reply = Reply::begin(xml, "CreateItem");
    for el in ids(op, "Items") {
        let response = match Kind::of(&el.name) {
            Some(kind) => match respond::build(ctx, el, kind).await {
                Ok(r) => Some((kind, r)),
                Err(code) => {
                    reply.fail(code);
                    continue;
                }
            },
            None => None,
        };
        let msg = response.as_ref().map_or(el, |(_, r)| &r.message);
        if msg.name == "Message" && disposition != "SaveOnly" {
            let owner = ctx.own_mailbox().unwrap_or_default().to_string();
            let copy = match (disposition, op.child("SavedItemFolderId"), &target) {
                ("SendAndSaveCopy", Some(_), Ok(f)) => Ok(Some(f.id)),
                ("SendAndSaveCopy", Some(_), Err(code)) => Err(*code),
                _ => Ok(None),
            };
            let saved = match (disposition, copy) {
                ("SendAndSaveCopy", Ok(folder)) => props::of_new_item(msg).map(|properties| {
                    Some(SavedCopy {
                        folder,
                        flags: initial_flags(msg, false),
                        properties,
                    })
                }),
                (_, copy) => copy.map(|_| None),
            };
            let sent = match (message_bytes(ctx, msg, &owner), saved) {
                (Ok(raw), Ok(save_copy)) => send(ctx, &raw, Some(msg), save_copy).await,
                (Err(code), _) | (_, Err(code)) => {
                    Err((code, super::default_text(code).to_string()))
                }
            };
            if let (Ok(_), Some((kind, r))) = (&sent, &response) {
                let original = &r.original;
                let marked = ctx
                    .ews
                    .store
                    .store_flags(
                        original.folder.id,
                        vec![original.meta.uid],
                        FlagOp::Add,
                        vec![kind.marks_with().to_string()],
                        None,
                    )
                    .await;
                if let Err(e) = marked {
                    tracing::warn!(error = %e, "the answered message was not marked");
                }
            }
            match sent {
                Ok(_) => {
                    let x = reply.ok();
                    write_items(x, None);
                    reply.end();
                }
                Err((code, text)) => reply.error(code, &text),
            }
            continue;
        }
        // A generic `t:Item` (exchangelib's `Item`) is stored as a message: its
        // fields are a subset of a message's and it reads back as one.
        if msg.name != "Message" && msg.name != "Item" {
            reply.error(
                ResponseCode::ErrorInvalidOperation,
                "Only messages can be created in this version.",
            );
            continue;
        }
        let done = match &target {
            Ok(folder) => save(ctx, folder, msg).await,
            Err(code) => Err(*code),
        };
        match done {
            Ok(meta) => {
                // The new item's id and its attachments' ids (exchangelib pairs
                // them with the attachments it sent).
                let raw = ctx.ews.store.body(meta.body_id).await.unwrap_or_default();
                let stored = crate::message::Message::parse(&raw);
                let x = reply.ok();
                x.open("m:Items", &[]);
                x.open("t:Message", &[]);
                write_item_id(x, &meta);
                write_attachment_list(x, &meta.item_id, &stored, &stored.attachments());
                x.close("t:Message");
                x.close("m:Items");
                reply.end();
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

/// The message a `t:Message` carries: its MimeContent, or one built from its
/// fields, with the attachments it lists.
pub(super) fn message_bytes(
    ctx: &Context<'_>,
    msg: &Element,
    owner: &str,
) -> Result<Vec<u8>, ResponseCode> {
    let raw = match msg.child_text("MimeContent") {
        Some(b64) => {
            let clean: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            STANDARD
                .decode(clean)
                .map_err(|_| ResponseCode::ErrorCorruptData)?
        }
        None => compose(ctx, msg, owner),
    };
    // Attachments sent with the item (exchangelib sends them in CreateItem; an
    // attached item may carry attachments of its own).
    let parts = msg
        .child("Attachments")
        .map(|list| {
            list.children
                .iter()
                .map(|a| super::attachment::new_part(ctx, a, owner))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let raw = if parts.is_empty() {
        raw
    } else {
        crate::message::edit::add_parts(&raw, &parts)
    };
    if raw.is_empty() {
        return Err(ResponseCode::ErrorCorruptData);
    }
    if raw.len() as u64 > ctx.ews.max_message_size {
        return Err(ResponseCode::ErrorMessageSizeExceeded);
    }
    Ok(raw)
}

pub(super) async fn save(
    ctx: &Context<'_>,
    folder: &crate::store::Folder,
    msg: &Element,
) -> Result<MessageMeta, ResponseCode> {
    let raw = message_bytes(ctx, msg, &folder.mailbox_id)?;
    let flags = initial_flags(msg, msg.child("MimeContent").is_none());
    let properties = props::of_new_item(msg)?;
    let stored = ctx
        .ews
        .store
        .append_all(
            folder.id,
            vec![NewMessage {
                body: Arc::from(raw),
                internal_date: crate::clock::now_ms(),
                flags,
                properties,
            }],
        )
        .await
        .map_err(store_error)?
        .map_err(refused)?;
    let s = stored
        .first()
        .ok_or(ResponseCode::ErrorInternalServerError)?;
    message_at(ctx, folder.id, s.uid).await
}

/// SendItem: sends saved drafts (their stored message, to its To, Cc and Bcc);
/// with `SaveItemToFolder` the copy goes to `SavedItemFolderId` or else Sent
/// Items, keeping the draft's categories. The draft is removed once sent, as
/// Exchange moves it.
pub async fn send_item(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let save_copy = op.attr("SaveItemToFolder").is_none_or(|v| truthy(Some(v)));
    let mut trees = Trees::default();
    let copy_folder = match op.child("SavedItemFolderId") {
        Some(el) if save_copy => store_folder(ctx, &mut trees, el, MailboxAction::Create)
            .await
            .map(|f| Some(f.id)),
        _ => Ok(None),
    };
    let mut reply = Reply::begin(xml, "SendItem");
    for el in ids(op, "ItemIds") {
        let done = async {
            let Found { meta, .. } = open_item(ctx, el, MailboxAction::SubmitEmailForSending)
                .await
                .map_err(|c| (c, super::default_text(c).to_string()))?;
            let folder_id = copy_folder.map_err(|c| (c, super::default_text(c).to_string()))?;
            let copy = save_copy.then(|| SavedCopy {
                folder: folder_id,
                flags: categories(&meta.flags),
                properties: Vec::new(),
            });
            send_stored(ctx, &meta, copy).await
        }
        .await;
        match done {
            Ok(()) => {
                reply.ok();
                reply.end();
            }
            Err((code, text)) => reply.error(code, &text),
        }
    }
    reply.finish();
}

/// The category keywords among `flags`.
pub(super) fn categories(flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .filter(|f| keyword_to_category(f).is_some())
        .cloned()
        .collect()
}

/// Sends a stored draft to its recipients and removes it (Exchange moves a sent
/// draft out of Drafts); a saved copy keeps the draft's properties.
pub(super) async fn send_stored(
    ctx: &Context<'_>,
    meta: &MessageMeta,
    mut copy: Option<SavedCopy>,
) -> Result<(), (ResponseCode, String)> {
    let gone = || {
        (
            ResponseCode::ErrorItemNotFound,
            "the draft is gone".to_string(),
        )
    };
    let (folder, now) = ctx
        .ews
        .store
        .message_by_item_id(&meta.item_id)
        .await
        .map_err(|_| gone())?;
    let raw = ctx.ews.store.body(now.body_id).await.map_err(|_| gone())?;
    if let Some(copy) = &mut copy {
        let props = load_props(ctx, &now.item_id).await;
        copy.properties = props
            .map_err(|c| (c, super::default_text(c).to_string()))?
            .into_inner();
    }
    send(ctx, &raw, None, copy).await?;
    let _ = ctx.ews.store.expunge(folder.id, vec![now.uid]).await;
    Ok(())
}

/// DeleteItem: HardDelete and SoftDelete remove the item; MoveToDeletedItems moves
/// it to Deleted Items (and removes it when it is already there).
pub async fn delete_item(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let to_trash = op.attr("DeleteType") == Some("MoveToDeletedItems");
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "DeleteItem");
    for el in ids(op, "ItemIds") {
        let done = async {
            let Found { folder, meta } = open_item(ctx, el, MailboxAction::Delete).await?;
            if to_trash && folder.kind != Some(FolderKind::DeletedItems) {
                let trash = Element {
                    name: "DistinguishedFolderId".into(),
                    attrs: vec![("Id".into(), "deleteditems".into())],
                    children: vec![mailbox_of(ctx, &folder.mailbox_id)],
                    ..Element::default()
                };
                let to = store_folder(ctx, &mut trees, &trash, MailboxAction::MoveTo).await?;
                ctx.ews
                    .store
                    .copy_messages(folder.id, vec![meta.uid], to.id, true)
                    .await
                    .map_err(store_error)?
                    .map_err(refused)?;
            } else {
                ctx.ews
                    .store
                    .expunge(folder.id, vec![meta.uid])
                    .await
                    .map_err(store_error)?;
            }
            Ok::<(), ResponseCode>(())
        }
        .await;
        reply.empty_or_fail(done);
    }
    reply.finish();
}

/// A `Mailbox` element naming the owner of a mailbox by its primary address, so a
/// distinguished folder resolves in that mailbox (a delegate's delete goes to the
/// owner's Deleted Items).
pub(super) fn mailbox_of(ctx: &Context<'_>, owner: &str) -> Element {
    let address = ctx
        .ews
        .directory
        .describe_user(ctx.org_id(), owner)
        .ok()
        .and_then(|u| u.base.email)
        .unwrap_or_default();
    Element {
        name: "Mailbox".into(),
        children: vec![Element {
            name: "EmailAddress".into(),
            text: address,
            ..Element::default()
        }],
        ..Element::default()
    }
}

/// MoveItem and CopyItem: each item into `ToFolderId`; the new item ids are
/// returned unless `ReturnNewItemIds` is false.
pub async fn copy_or_move(ctx: &Context<'_>, op: &Element, xml: &mut Xml, remove: bool) {
    let name = if remove { "MoveItem" } else { "CopyItem" };
    let return_ids = op.attr("ReturnNewItemIds").is_none_or(|v| truthy(Some(v)));
    let mut trees = Trees::default();
    let action = if remove {
        MailboxAction::MoveTo
    } else {
        MailboxAction::CopyTo
    };
    let target = match op.child("ToFolderId") {
        Some(el) => store_folder(ctx, &mut trees, el, action).await,
        None => Err(ResponseCode::ErrorFolderNotFound),
    };
    transfer_all(ctx, op, xml, name, target, remove, return_ids).await
}

/// ArchiveItem: moves each item to the folder ArchiveSourceFolderId names, else
/// to the mailbox's Archive folder. There are no separate archive mailboxes here
/// (WorkMail has none); the Archive folder is where Outlook's and Thunderbird's
/// Archive action files mail too.
pub async fn archive_item(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut trees = Trees::default();
    let archive = distinguished(FolderKind::Archive);
    // The folder `ArchiveSourceFolderId` names is where exchangelib expects the
    // items (as in an archive mailbox's folder of that name); without one, the
    // Archive folder.
    let folder = op
        .child("ArchiveSourceFolderId")
        .and_then(|f| f.children.first())
        .unwrap_or(&archive);
    let target = store_folder(ctx, &mut trees, folder, MailboxAction::MoveTo).await;
    transfer_all(ctx, op, xml, "ArchiveItem", target, true, true).await
}

/// Copies or moves every item of `op`'s ItemIds to `target`, one response
/// message each.
pub(super) async fn transfer_all(
    ctx: &Context<'_>,
    op: &Element,
    xml: &mut Xml,
    name: &str,
    target: Result<crate::store::Folder, ResponseCode>,
    remove: bool,
    return_ids: bool,
) {
    let mut reply = Reply::begin(xml, name);
    for el in ids(op, "ItemIds") {
        let done = match &target {
            Ok(to) => transfer(ctx, el, to.id, remove).await,
            Err(code) => Err(*code),
        };
        match done {
            Ok(meta) => {
                let x = reply.ok();
                write_items(x, meta.as_ref().filter(|_| return_ids));
                reply.end();
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

pub(super) async fn transfer(
    ctx: &Context<'_>,
    el: &Element,
    to: i64,
    remove: bool,
) -> Result<Option<MessageMeta>, ResponseCode> {
    let action = if remove {
        MailboxAction::Move
    } else {
        MailboxAction::Copy
    };
    let Found { folder, meta } = open_item(ctx, el, action).await?;
    copy_one(ctx, folder.id, meta.uid, to, remove).await
}

/// Copies (or moves) one message to folder `to`; the new message's metadata.
pub(super) async fn copy_one(
    ctx: &Context<'_>,
    from: i64,
    uid: u32,
    to: i64,
    remove: bool,
) -> Result<Option<MessageMeta>, ResponseCode> {
    let store = &ctx.ews.store;
    let outcome = store
        .copy_messages(from, vec![uid], to, remove)
        .await
        .map_err(store_error)?
        .map_err(refused)?;
    let Some((_, new_uid)) = outcome.pairs.first() else {
        return Err(ResponseCode::ErrorMoveCopyFailed);
    };
    message_at(ctx, to, *new_uid).await.map(Some)
}

/// MarkAllItemsAsRead: every message of each folder read (or unread).
pub async fn mark_all_items_as_read(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let read = truthy(op.child_text("ReadFlag"));
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "MarkAllItemsAsRead");
    for el in ids(op, "FolderIds") {
        let done = async {
            let folder = store_folder(ctx, &mut trees, el, MailboxAction::UpdateReadState).await?;
            let store = &ctx.ews.store;
            let uids: Vec<u32> = store
                .messages(folder.id, 1, u32::MAX)
                .await
                .map_err(store_error)?
                .into_iter()
                .filter(|m| m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")) != read)
                .map(|m| m.uid)
                .collect();
            if !uids.is_empty() {
                let op = if read { FlagOp::Add } else { FlagOp::Remove };
                store
                    .store_flags(folder.id, uids, op, vec!["\\Seen".into()], None)
                    .await
                    .map_err(store_error)?;
            }
            Ok::<(), ResponseCode>(())
        }
        .await;
        reply.empty_or_fail(done);
    }
    reply.finish();
}

/// MarkAsJunk: sets `$Junk`/`$NotJunk` (the IMAP keywords mail clients share) and,
/// with `MoveItem`, moves the item to Junk Email (or back to the Inbox).
/// Whether a message is from its mailbox's own address: a user is always their
/// own safe sender, so Exchange flags such a message as junk but leaves it where
/// it is.
pub(super) async fn from_owner(
    ctx: &Context<'_>,
    folder: &crate::store::Folder,
    meta: &MessageMeta,
) -> bool {
    let Ok(raw) = ctx.ews.store.body(meta.body_id).await else {
        return false;
    };
    let msg = crate::message::Message::parse(&raw);
    let own = ctx
        .ews
        .directory
        .describe_user(ctx.org_id(), &folder.mailbox_id)
        .ok()
        .and_then(|u| u.base.email);
    let from = crate::ews::item::Summary::of(&msg).from;
    own.is_some_and(|own| from.iter().any(|a| a.address.eq_ignore_ascii_case(&own)))
}

pub async fn mark_as_junk(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let junk = truthy(op.attr("IsJunk"));
    let move_it = truthy(op.attr("MoveItem"));
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "MarkAsJunk");
    for el in ids(op, "ItemIds") {
        let done = async {
            let Found { folder, meta } = open_item(ctx, el, MailboxAction::Update).await?;
            let store = &ctx.ews.store;
            let (add, remove) = if junk {
                ("$Junk", "$NotJunk")
            } else {
                ("$NotJunk", "$Junk")
            };
            // Remove then add (not one Replace from the flags read above): a flag
            // another client sets meanwhile is kept.
            for (op, flag) in [(FlagOp::Remove, remove), (FlagOp::Add, add)] {
                store
                    .store_flags(folder.id, vec![meta.uid], op, vec![flag.into()], None)
                    .await
                    .map_err(store_error)?;
            }
            if !move_it {
                return Ok(None);
            }
            let kind = if junk {
                FolderKind::JunkEmail
            } else {
                FolderKind::Inbox
            };
            if folder.kind == Some(kind) || (junk && from_owner(ctx, &folder, &meta).await) {
                return Ok(None);
            }
            let mut dest = distinguished(kind);
            dest.children.push(mailbox_of(ctx, &folder.mailbox_id));
            let to = store_folder(ctx, &mut trees, &dest, MailboxAction::MoveTo).await?;
            copy_one(ctx, folder.id, meta.uid, to.id, true).await
        }
        .await;
        match done {
            Ok(moved) => {
                let x = reply.ok();
                if let Some(m) = moved {
                    x.empty(
                        "m:MovedItemId",
                        &[
                            ("Id", &EwsId::Item(m.item_id.clone()).encode()),
                            ("ChangeKey", &m.change_key()),
                        ],
                    );
                }
                reply.end();
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}
