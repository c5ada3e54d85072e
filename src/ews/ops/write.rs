//! Changing items: CreateItem (saving; sending joins the submission path next),
//! UpdateItem (read state, follow-up flag, categories, with ChangeKey conflicts),
//! DeleteItem, MoveItem, CopyItem, MarkAllItemsAsRead and MarkAsJunk. Every change is
//! a store write of the same message IMAP sees, so IMAP IDLE and EWS sync both
//! observe it through the change feed.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::folder::{Trees, open_folder};
use super::item::{Found, load_props, open_item, stored_body};
use super::respond::{self, Kind};
use super::shape::{Extended, Path};
use super::{Reply, ids, truthy};
use crate::events::audit::AuditProtocol;
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::item::{
    Addr, category_to_keyword, keyword_to_category, write_attachment_list, write_item_id,
};
use crate::ews::props::{self, Edit};
use crate::ews::xml::{Element, Xml};
use crate::store::{FlagOp, FolderKind, ItemChange, MessageMeta, NewMessage, Property, Refused};
use crate::submission::{SavedCopy, Submission, SubmitError, Submitted};

pub(super) fn store_error(_: crate::store::StoreError) -> ResponseCode {
    ResponseCode::ErrorInternalServerError
}

pub(super) fn refused(r: Refused) -> ResponseCode {
    match r {
        Refused::OverQuota => ResponseCode::ErrorQuotaExceeded,
        Refused::NoSuchFolder => ResponseCode::ErrorFolderNotFound,
    }
}

/// Writes `m:Items` holding one ItemId (or nothing).
fn write_items(xml: &mut Xml, meta: Option<&MessageMeta>) {
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
fn distinguished(kind: FolderKind) -> Element {
    Element {
        name: "DistinguishedFolderId".into(),
        attrs: vec![("Id".into(), kind.as_str().into())],
        ..Element::default()
    }
}

fn mailbox_addrs(el: Option<&Element>) -> Vec<Addr> {
    el.map(|list| {
        list.children
            .iter()
            .filter_map(|m| {
                let address = m.child_text("EmailAddress")?.to_string();
                Some(Addr {
                    name: m
                        .child_text("Name")
                        .map(str::to_string)
                        .filter(|n| !n.is_empty()),
                    address,
                })
            })
            .collect()
    })
    .unwrap_or_default()
}

fn builder_addrs(list: &[Addr]) -> Vec<mail_builder::headers::address::Address<'static>> {
    list.iter()
        .map(|a| match &a.name {
            Some(n) => (n.clone(), a.address.clone()).into(),
            None => a.address.clone().into(),
        })
        .collect()
}

/// Builds RFC 5322 bytes from a `t:Message`'s fields (when it has no MimeContent).
fn compose(ctx: &Context<'_>, msg: &Element, owner: &str) -> Vec<u8> {
    // Exchange keeps the first 255 characters of a subject (PR_SUBJECT's limit).
    let subject: String = msg
        .child_text("Subject")
        .unwrap_or("")
        .chars()
        .take(255)
        .collect();
    let mut b = mail_builder::MessageBuilder::new()
        .subject(subject)
        .date(crate::clock::now_secs());
    let from = msg
        .child("From")
        .map(|f| mailbox_addrs(Some(f)))
        .unwrap_or_default();
    let from = if from.is_empty() {
        ctx.ews
            .directory
            .describe_user(ctx.org_id(), owner)
            .ok()
            .and_then(|u| {
                u.base.email.map(|e| {
                    vec![Addr {
                        name: Some(u.display_name).filter(|n| !n.is_empty()),
                        address: e,
                    }]
                })
            })
            .unwrap_or_default()
    } else {
        from
    };
    if !from.is_empty() {
        b = b.from(builder_addrs(&from));
    }
    for (name, field) in [
        ("ToRecipients", 0),
        ("CcRecipients", 1),
        ("BccRecipients", 2),
    ] {
        let list = mailbox_addrs(msg.child(name));
        if list.is_empty() {
            continue;
        }
        let a = builder_addrs(&list);
        b = match field {
            0 => b.to(a),
            1 => b.cc(a),
            _ => b.bcc(a),
        };
    }
    let reply_to = mailbox_addrs(msg.child("ReplyTo"));
    if !reply_to.is_empty() {
        b = b.reply_to(builder_addrs(&reply_to));
    }
    let raw = |v: &str| mail_builder::headers::raw::Raw::new(v.trim().to_string());
    // Kept as the client wrote them, unfolded (a builder would refold them and
    // change their whitespace): EWS clients, exchangelib among them, treat these
    // as opaque text, and threading compares them byte for byte.
    let mut verbatim = Vec::new();
    for (element, header) in [
        ("InternetMessageId", "Message-ID"),
        ("InReplyTo", "In-Reply-To"),
        ("References", "References"),
    ] {
        if let Some(v) = msg.child_text(element).filter(|v| !v.trim().is_empty()) {
            let line: String = v
                .trim()
                .chars()
                .filter(|c| *c != '\r' && *c != '\n')
                .collect();
            verbatim.extend_from_slice(format!("{header}: {line}\r\n").as_bytes());
        }
    }
    if let Some(imp) = msg.child_text("Importance").filter(|i| *i != "Normal") {
        b = b.header("Importance", raw(imp));
    }
    // RFC 2156's spelling of the MAPI sensitivities, so other clients see it too.
    let sensitivity = match msg.child_text("Sensitivity").map(str::trim) {
        Some("Personal") => Some("Personal"),
        Some("Private") => Some("Private"),
        Some("Confidential") => Some("Company-Confidential"),
        _ => None,
    };
    if let Some(v) = sensitivity {
        b = b.header("Sensitivity", raw(v));
    }
    if truthy(msg.child_text("IsReadReceiptRequested"))
        && let Some(a) = from.first()
    {
        b = b.header("Disposition-Notification-To", raw(&a.address));
    }
    let body = msg.child("Body");
    let text = body.map(|b| b.text.clone()).unwrap_or_default();
    b = if body.and_then(|b| b.attr("BodyType")) == Some("HTML") {
        b.html_body(text)
    } else {
        b.text_body(text)
    };
    let built = b.write_to_vec().unwrap_or_default();
    // The builder makes a Message-ID of its own; the client's replaces it.
    let built = match msg
        .child_text("InternetMessageId")
        .filter(|v| !v.trim().is_empty())
    {
        Some(_) => strip_header(&built, b"message-id:"),
        None => built,
    };
    [verbatim, built].concat()
}

/// `raw` without its `name` fields (continuation lines included).
fn strip_header(raw: &[u8], name: &[u8]) -> Vec<u8> {
    let header_end = crate::message::parse(raw).header.end.min(raw.len());
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in raw[..header_end].split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name);
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[header_end..]);
    out
}

/// The IMAP flags a new item starts with: IsRead, categories, PR_MESSAGE_FLAGS
/// (0x0E07: read 1, unsent 8), follow-up flag 0x1090.
fn initial_flags(msg: &Element, draft_default: bool) -> Vec<String> {
    let mut flags = Vec::new();
    let mut draft = draft_default;
    if truthy(msg.child_text("IsRead")) {
        flags.push("\\Seen".to_string());
    }
    for p in msg.children_named("ExtendedProperty") {
        let Some(uri) = p.child("ExtendedFieldURI") else {
            continue;
        };
        let value: u32 = p
            .child_text("Value")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match Extended::parse(uri).tag {
            Some(0x0E07) => {
                if value & 1 != 0 {
                    flags.push("\\Seen".into());
                }
                draft = value & 8 != 0;
            }
            Some(0x1090) if value == 2 => flags.push("\\Flagged".into()),
            _ => {}
        }
    }
    if draft {
        flags.push("\\Draft".into());
    }
    if let Some(cats) = msg.child("Categories") {
        flags.extend(
            cats.children
                .iter()
                .map(|c| category_to_keyword(c.text.trim())),
        );
    }
    crate::store::normalize_flags(&flags)
}

/// The message header with every `Bcc:` field (and its continuation lines)
/// removed: Bcc recipients travel in the envelope only.
pub fn strip_bcc(raw: &[u8]) -> Vec<u8> {
    strip_header(raw, b"bcc:")
}

/// Every envelope recipient of a message: its To, Cc and Bcc headers plus the
/// `BccRecipients` sent beside the MIME (Thunderbird keeps Bcc out of it).
fn recipients(raw: &[u8], msg: Option<&Element>) -> Vec<String> {
    let parsed = crate::message::Message::parse(raw);
    let mut out: Vec<String> = ["To", "Cc", "Bcc"]
        .iter()
        .flat_map(|h| {
            crate::message::mailboxes(&parsed.addresses(h))
                .map(|m| m.address())
                .collect::<Vec<_>>()
        })
        .collect();
    if let Some(m) = msg {
        out.extend(
            mailbox_addrs(m.child("BccRecipients"))
                .into_iter()
                .map(|a| a.address),
        );
    }
    out
}

fn submit_error(e: SubmitError) -> (ResponseCode, String) {
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
async fn send(
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
            let save_copy = (disposition == "SendAndSaveCopy").then(|| SavedCopy {
                folder: copy.unwrap_or(None),
                flags: initial_flags(msg, false),
            });
            let sent = match (message_bytes(ctx, msg, &owner), copy) {
                (Ok(raw), Ok(_)) => send(ctx, &raw, Some(msg), save_copy).await,
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

async fn save(
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
    let metas = ctx
        .ews
        .store
        .messages(folder.id, s.uid, s.uid)
        .await
        .map_err(store_error)?;
    metas
        .into_iter()
        .next()
        .ok_or(ResponseCode::ErrorItemNotFound)
}

/// The flag list an UpdateItem's changes give, from the current one.
fn updated_flags(current: &[String], updates: &Element) -> Result<Vec<String>, ResponseCode> {
    let mut flags: Vec<String> = current.to_vec();
    let set = |flags: &mut Vec<String>, flag: &str, on: bool| {
        flags.retain(|f| !f.eq_ignore_ascii_case(flag));
        if on {
            flags.push(flag.to_string());
        }
    };
    for change in &updates.children {
        let uri = change
            .children
            .iter()
            .find(|c| c.name.ends_with("FieldURI"));
        let value = change
            .children
            .iter()
            .find(|c| !c.name.ends_with("FieldURI"));
        let field = uri.and_then(|u| u.attr("FieldURI")).unwrap_or("");
        let tag = uri
            .filter(|u| u.name == "ExtendedFieldURI")
            .and_then(|u| Extended::parse(u).tag);
        let deleting = change.name == "DeleteItemField";
        match (field, tag) {
            ("message:IsRead", _) => {
                let on = !deleting && truthy(value.and_then(|v| v.child_text("IsRead")));
                set(&mut flags, "\\Seen", on);
            }
            ("item:Flag", _) => {
                let status = value
                    .and_then(|v| v.path(&["Flag", "FlagStatus"]))
                    .map(|s| s.text.trim());
                set(
                    &mut flags,
                    "\\Flagged",
                    !deleting && status == Some("Flagged"),
                );
            }
            (_, Some(0x1090)) => {
                let v = value
                    .and_then(|v| v.path(&["ExtendedProperty", "Value"]))
                    .map(|s| s.text.trim());
                set(&mut flags, "\\Flagged", !deleting && v == Some("2"));
            }
            (_, Some(0x0E07)) => {
                let v: u32 = value
                    .and_then(|v| v.path(&["ExtendedProperty", "Value"]))
                    .and_then(|s| s.text.trim().parse().ok())
                    .unwrap_or(0);
                set(&mut flags, "\\Seen", !deleting && v & 1 != 0);
                set(&mut flags, "\\Draft", !deleting && v & 8 != 0);
            }
            ("item:Categories", _) => {
                let new: Vec<String> = value
                    .and_then(|v| v.child("Categories"))
                    .map(|c| {
                        c.children
                            .iter()
                            .map(|s| category_to_keyword(s.text.trim()))
                            .collect()
                    })
                    .unwrap_or_default();
                if change.name != "AppendToItemField" {
                    flags.retain(|f| keyword_to_category(f).is_none());
                }
                if !deleting {
                    flags.extend(new);
                }
            }
            // Properties kept inside the message: a draft is rewritten
            // (see `rewrite_draft`); those kept beside it are `props` edits.
            (f, _) if content_element(f).is_some() || f == "item:MimeContent" => {}
            _ if uri
                .and_then(Path::parse)
                .is_some_and(|p| props::is_stored(&p)) => {}
            _ => return Err(ResponseCode::ErrorInvalidPropertySet),
        }
    }
    Ok(crate::store::normalize_flags(&flags))
}

/// UpdateItem: read state, follow-up flag and categories, checked against the
/// ChangeKey the client holds unless it asked to overwrite.
pub async fn update_item(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let overwrite = op.attr("ConflictResolution") == Some("AlwaysOverwrite");
    let disposition = op.attr("MessageDisposition").unwrap_or("SaveOnly");
    let mut reply = Reply::begin(xml, "UpdateItem");
    for change in ids(op, "ItemChanges") {
        let done = match change.child("ItemId") {
            Some(id) => update_one(ctx, id, change, overwrite).await,
            None => Err(ResponseCode::ErrorInvalidIdMalformed),
        };
        // SendOnly and SendAndSaveCopy send the updated draft, as SendItem would:
        // the answer then names no item.
        if let (Ok(meta), "SendOnly" | "SendAndSaveCopy") = (&done, disposition) {
            let copy = (disposition == "SendAndSaveCopy").then(|| SavedCopy {
                folder: None,
                flags: categories(&meta.flags),
            });
            let item = Element {
                name: "ItemId".into(),
                attrs: vec![("Id".into(), EwsId::Item(meta.item_id.clone()).encode())],
                ..Element::default()
            };
            let sent = match open_item(ctx, &item, MailboxAction::SubmitEmailForSending).await {
                Ok(found) => send_stored(ctx, &found.meta, copy).await,
                Err(c) => Err((c, super::default_text(c).to_string())),
            };
            match sent {
                Ok(()) => {
                    let x = reply.ok();
                    write_items(x, None);
                    reply.end();
                }
                Err((code, text)) => reply.error(code, &text),
            }
            continue;
        }
        match done {
            Ok(meta) => {
                let x = reply.ok();
                write_items(x, Some(&meta));
                x.open("m:ConflictResults", &[])
                    .leaf("t:Count", "0")
                    .close("m:ConflictResults");
                reply.end();
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

/// The `t:Message` child an UpdateItem field URI names, for the properties that
/// live in the message itself.
fn content_element(uri: &str) -> Option<&'static str> {
    Some(match uri {
        "item:Subject" => "Subject",
        "item:Body" => "Body",
        "item:Importance" => "Importance",
        "item:InReplyTo" => "InReplyTo",
        "message:References" => "References",
        "message:InternetMessageId" => "InternetMessageId",
        "message:ReplyTo" => "ReplyTo",
        "message:ToRecipients" => "ToRecipients",
        "message:CcRecipients" => "CcRecipients",
        "message:BccRecipients" => "BccRecipients",
        "message:From" => "From",
        _ => return None,
    })
}

fn mailbox_list(name: &str, list: &[Addr]) -> Element {
    let mailbox = |a: &Addr| {
        let mut children = vec![Element {
            name: "EmailAddress".into(),
            text: a.address.clone(),
            ..Element::default()
        }];
        if let Some(n) = &a.name {
            children.push(Element {
                name: "Name".into(),
                text: n.clone(),
                ..Element::default()
            });
        }
        Element {
            name: "Mailbox".into(),
            children,
            ..Element::default()
        }
    };
    Element {
        name: name.into(),
        children: list.iter().map(mailbox).collect(),
        ..Element::default()
    }
}

/// A draft as the `t:Message` fields it was (or could have been) created from.
fn draft_fields(msg: &crate::message::Message<'_>) -> Element {
    let s = crate::ews::item::Summary::of(msg);
    let text = |name: &str, value: String| Element {
        name: name.into(),
        text: value,
        ..Element::default()
    };
    let bodies = msg.bodies();
    let (kind, body) = match (bodies.html, bodies.text) {
        (Some(h), _) => ("HTML", h.part.text(msg.raw())),
        (None, Some(t)) => ("Text", t.part.text(msg.raw())),
        (None, None) => ("Text", String::new()),
    };
    let mut body = text("Body", body);
    body.attrs.push(("BodyType".into(), kind.into()));
    let mut children = vec![
        text("Subject", s.subject.clone()),
        body,
        text("Importance", s.importance.to_string()),
        mailbox_list("ToRecipients", &s.to),
        mailbox_list("CcRecipients", &s.cc),
        mailbox_list("BccRecipients", &s.bcc),
        mailbox_list("From", &s.from),
        mailbox_list("ReplyTo", &s.reply_to),
    ];
    for (name, value) in [
        ("InternetMessageId", &s.message_id),
        ("InReplyTo", &s.in_reply_to),
        ("References", &s.references),
    ] {
        if let Some(v) = value {
            children.push(text(name, v.clone()));
        }
    }
    Element {
        name: "Message".into(),
        children,
        ..Element::default()
    }
}

/// Applies the content changes of an UpdateItem to a draft's fields.
fn apply_content(fields: &mut Element, updates: &Element) {
    for change in &updates.children {
        let Some(name) = change
            .children
            .iter()
            .find(|c| c.name == "FieldURI")
            .and_then(|u| u.attr("FieldURI"))
            .and_then(content_element)
        else {
            continue;
        };
        let value = change
            .children
            .iter()
            .find(|c| !c.name.ends_with("FieldURI"))
            .and_then(|v| v.child(name))
            .cloned();
        let at = fields.children.iter().position(|c| c.name == name);
        match (change.name.as_str(), value, at) {
            ("DeleteItemField", _, Some(i)) => {
                fields.children.remove(i);
            }
            ("AppendToItemField", Some(v), Some(i)) if name == "Body" => {
                fields.children[i].text.push_str(&v.text)
            }
            ("AppendToItemField", Some(v), Some(i)) => {
                fields.children[i].children.extend(v.children)
            }
            ("SetItemField", Some(v), Some(i)) => fields.children[i] = v,
            ("SetItemField" | "AppendToItemField", Some(v), None) => fields.children.push(v),
            _ => {}
        }
    }
}

/// Whether an UpdateItem changes what is inside the message.
fn changes_content(updates: &Element) -> bool {
    updates.children.iter().any(|c| {
        c.children
            .iter()
            .any(|u| u.name == "FieldURI" && u.attr("FieldURI").and_then(content_element).is_some())
    })
}

/// The message a `SetItemField` of `item:MimeContent` gives a draft (exchangelib
/// sends back the MIME it read, then the fields it changed; the fields apply on
/// top of it, as on Exchange).
fn new_mime(updates: &Element) -> Result<Option<Vec<u8>>, ResponseCode> {
    let set = updates.children.iter().find(|c| {
        c.name == "SetItemField"
            && c.child("FieldURI").and_then(|u| u.attr("FieldURI")) == Some("item:MimeContent")
    });
    let Some(b64) = set.and_then(|c| {
        c.path(&["Message", "MimeContent"])
            .or_else(|| c.path(&["Item", "MimeContent"]))
    }) else {
        return Ok(None);
    };
    let clean: String = b64
        .text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let raw = STANDARD
        .decode(clean)
        .map_err(|_| ResponseCode::ErrorCorruptData)?;
    if raw.is_empty() {
        return Err(ResponseCode::ErrorCorruptData);
    }
    Ok(Some(raw))
}

/// Rewrites a draft with its fields changed: a new message under the same item id
/// (IMAP sees the old UID expunged and a new one); its attachments are carried
/// over as they were.
async fn rewrite_draft(
    ctx: &Context<'_>,
    folder: &crate::store::Folder,
    meta: &MessageMeta,
    updates: &Element,
    flags: Vec<String>,
    properties: Vec<Property>,
) -> Result<MessageMeta, ResponseCode> {
    let store = &ctx.ews.store;
    let draft = meta.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Draft"));
    if !draft {
        return Err(ResponseCode::ErrorInvalidPropertySet);
    }
    let mime = new_mime(updates)?;
    let fields_change = changes_content(updates);
    let body = match (mime, fields_change) {
        (Some(raw), false) => raw,
        (mime, _) => {
            let raw = match mime {
                Some(raw) => raw,
                None => stored_body(ctx, meta.body_id).await?,
            };
            let msg = crate::message::Message::parse(&raw);
            let mut fields = draft_fields(&msg);
            apply_content(&mut fields, updates);
            let rebuilt = compose(ctx, &fields, &folder.mailbox_id);
            // The attachments move over byte for byte (the fields do not carry them).
            let kept = crate::message::edit::attachment_parts(&raw);
            if kept.is_empty() {
                rebuilt
            } else {
                crate::message::edit::add_parts(&rebuilt, &kept)
            }
        }
    };
    if body.len() as u64 > ctx.ews.max_message_size {
        return Err(ResponseCode::ErrorMessageSizeExceeded);
    }
    let stored = store
        .replace_message(
            folder.id,
            meta.uid,
            NewMessage {
                body: Arc::from(body),
                internal_date: meta.internal_date,
                flags,
                properties,
            },
        )
        .await
        .map_err(store_error)?
        .map_err(refused)?;
    let now = store
        .messages(folder.id, stored.uid, stored.uid)
        .await
        .map_err(store_error)?;
    now.into_iter()
        .next()
        .ok_or(ResponseCode::ErrorItemNotFound)
}

async fn update_one(
    ctx: &Context<'_>,
    id: &Element,
    change: &Element,
    overwrite: bool,
) -> Result<MessageMeta, ResponseCode> {
    let Found { folder, meta } = open_item(ctx, id, MailboxAction::Update).await?;
    let held = id.attr("ChangeKey").filter(|k| !k.is_empty());
    if !overwrite && held.is_some_and(|k| k != meta.change_key()) {
        return Err(ResponseCode::ErrorIrresolvableConflict);
    }
    let updates = change
        .child("Updates")
        .ok_or(ResponseCode::ErrorSchemaValidation)?;
    let flags = updated_flags(&meta.flags, updates)?;
    let mut edits = Vec::new();
    for u in &updates.children {
        if let Some(edit) = u
            .children
            .iter()
            .find_map(Path::parse)
            .and_then(|p| props::edit(u, &p))
        {
            edits.push(edit?);
        }
    }
    if changes_content(updates) || new_mime(updates)?.is_some() {
        let current = load_props(ctx, &meta.item_id).await?;
        let properties = props::apply(current, &edits);
        return rewrite_draft(ctx, &folder, &meta, updates, flags, properties).await;
    }
    let (mut set, mut remove) = (Vec::new(), Vec::new());
    for e in edits {
        match e {
            Edit::Set(p) => set.push(p),
            Edit::Remove(k) => remove.push(k),
        }
    }
    let change = ItemChange {
        flags: Some(flags),
        set,
        remove,
    };
    let since = (!overwrite && held.is_some()).then_some(meta.modseq);
    let outcome = ctx
        .ews
        .store
        .change_item(folder.id, meta.uid, change, since)
        .await
        .map_err(store_error)?;
    if !outcome.modified.is_empty() {
        return Err(ResponseCode::ErrorIrresolvableConflict);
    }
    let now = ctx
        .ews
        .store
        .messages(folder.id, meta.uid, meta.uid)
        .await
        .map_err(store_error)?;
    now.into_iter()
        .next()
        .ok_or(ResponseCode::ErrorItemNotFound)
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
fn categories(flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .filter(|f| keyword_to_category(f).is_some())
        .cloned()
        .collect()
}

/// Sends a stored draft to its recipients and removes it (Exchange moves a sent
/// draft out of Drafts).
async fn send_stored(
    ctx: &Context<'_>,
    meta: &MessageMeta,
    copy: Option<SavedCopy>,
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
fn mailbox_of(ctx: &Context<'_>, owner: &str) -> Element {
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
async fn transfer_all(
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

async fn transfer(
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
async fn copy_one(
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
    let metas = store
        .messages(to, *new_uid, *new_uid)
        .await
        .map_err(store_error)?;
    Ok(metas.into_iter().next())
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
async fn from_owner(ctx: &Context<'_>, folder: &crate::store::Folder, meta: &MessageMeta) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::xml::parse;

    #[test]
    fn updates_map_to_imap_flags() {
        let updates = parse(br#"<Updates>
            <SetItemField><FieldURI FieldURI="message:IsRead"/><Message><IsRead>true</IsRead></Message></SetItemField>
            <SetItemField><ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/><Message><ExtendedProperty><ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/><Value>2</Value></ExtendedProperty></Message></SetItemField>
            <SetItemField><FieldURI FieldURI="item:Categories"/><Message><Categories><String>Blue category</String></Categories></Message></SetItemField>
        </Updates>"#).unwrap();
        let flags = updated_flags(&["old".to_string(), "$Junk".to_string()], &updates).unwrap();
        assert_eq!(flags, ["\\Flagged", "\\Seen", "$Junk", "Blue&20category"]);
        let clear = parse(br#"<Updates><DeleteItemField><FieldURI FieldURI="item:Categories"/></DeleteItemField><SetItemField><FieldURI FieldURI="item:Flag"/><Message><Flag><FlagStatus>NotFlagged</FlagStatus></Flag></Message></SetItemField></Updates>"#).unwrap();
        assert_eq!(updated_flags(&flags, &clear).unwrap(), ["\\Seen", "$Junk"]);
        // A property kept beside the message is not a flag change, and not refused.
        let reminder = parse(br#"<Updates><SetItemField><FieldURI FieldURI="item:ReminderIsSet"/><Message><ReminderIsSet>true</ReminderIsSet></Message></SetItemField></Updates>"#).unwrap();
        assert_eq!(
            updated_flags(&["\\Seen".into()], &reminder).unwrap(),
            ["\\Seen"]
        );
        let read_only = parse(br#"<Updates><SetItemField><FieldURI FieldURI="item:DateTimeReceived"/><Message><DateTimeReceived>2026-01-01T00:00:00Z</DateTimeReceived></Message></SetItemField></Updates>"#).unwrap();
        assert_eq!(
            updated_flags(&[], &read_only),
            Err(ResponseCode::ErrorInvalidPropertySet)
        );
    }

    #[test]
    fn thunderbird_draft_flags_and_categories_on_create() {
        let msg = parse(br#"<Message><MimeContent>eA==</MimeContent><IsRead>true</IsRead><ExtendedProperty><ExtendedFieldURI PropertyTag="3591" PropertyType="Integer"/><Value>9</Value></ExtendedProperty><Categories><String>Red</String></Categories></Message>"#).unwrap();
        assert_eq!(initial_flags(&msg, false), ["\\Draft", "\\Seen", "Red"]);
        let plain = parse(b"<Message><Subject>x</Subject></Message>").unwrap();
        assert_eq!(initial_flags(&plain, true), ["\\Draft"]);
    }
}
