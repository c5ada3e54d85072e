//! Attachments: GetAttachment (an attachment's content, found by its part path
//! in the stored message: file attachments as base64 Content, attached messages as
//! an item with their MIME content), CreateAttachment and DeleteAttachment (the
//! item's message rewritten with the part added or removed, under the same item
//! id, flags and properties).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use std::sync::Arc;

use super::item::{Found, load_props, message_at, open_item, stored_body};
use super::shape::BodyType;
use super::write::{message_bytes, refused, store_error};
use super::{Reply, ids};
use crate::events::audit::MailboxAction;
use crate::ews::attachment_ids::{AttachmentRef, all_attachments, attachment_ids};
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::item::{Summary, write_attachment_list, write_body, write_mailboxes, xsd_datetime};
use crate::ews::props;
use crate::ews::xml::{Element, Xml};
use crate::message::edit::{NewPart, add_parts, remove_part};
use crate::message::{Attachment, Message, PartPath};
use crate::store::{MessageMeta, NewMessage};

/// The fields of an attached item (inside its `t:Message`, after MimeContent), in
/// schema order: from its message, and from the properties and categories its
/// [`props::ATTACHED_HEADER`] carries. `attachments` writes its `t:Attachments`.
fn write_attached_item(
    x: &mut Xml,
    inner: &Message<'_>,
    s: &Summary,
    body_type: BodyType,
    attachments: impl FnOnce(&mut Xml),
) {
    let (stored, categories) = inner
        .field(props::ATTACHED_HEADER)
        .map(|f| props::from_attached_header(&f.decoded()))
        .unwrap_or_default();
    let field = |uri: &str| stored.field_text(uri);
    let bool_or_false = |uri: &str| field(uri).unwrap_or_else(|| "false".into());
    x.leaf("t:Subject", &s.subject);
    x.leaf(
        "t:Sensitivity",
        &field("item:Sensitivity").unwrap_or_else(|| s.sensitivity.to_string()),
    );
    write_body(x, "t:Body", inner, body_type);
    attachments(x);
    if !categories.is_empty() {
        x.open("t:Categories", &[]);
        for c in &categories {
            x.leaf("t:String", c);
        }
        x.close("t:Categories");
    }
    x.leaf("t:Importance", s.importance);
    if let Some(v) = &s.in_reply_to {
        x.leaf("t:InReplyTo", v);
    }
    if let Some(t) = s.sent {
        x.leaf("t:DateTimeSent", &xsd_datetime(t));
    }
    if let Some(v) = field("item:ReminderDueBy") {
        x.leaf("t:ReminderDueBy", &v);
    }
    x.leaf("t:ReminderIsSet", &bool_or_false("item:ReminderIsSet"));
    x.leaf(
        "t:ReminderMinutesBeforeStart",
        &field("item:ReminderMinutesBeforeStart").unwrap_or_else(|| "0".into()),
    );
    x.leaf(
        "t:HasAttachments",
        if s.has_attachments { "true" } else { "false" },
    );
    if let Some(c) = field("item:Culture") {
        x.leaf("t:Culture", &c);
    }
    write_body(x, "t:TextBody", inner, BodyType::Text);
    for (name, list) in [
        ("t:ToRecipients", &s.to),
        ("t:CcRecipients", &s.cc),
        ("t:BccRecipients", &s.bcc),
    ] {
        write_mailboxes(x, name, list);
    }
    x.leaf(
        "t:IsReadReceiptRequested",
        &field("message:IsReadReceiptRequested")
            .unwrap_or_else(|| (if s.read_receipt { "true" } else { "false" }).into()),
    );
    x.leaf(
        "t:IsDeliveryReceiptRequested",
        &bool_or_false("message:IsDeliveryReceiptRequested"),
    );
    if let Some(a) = s.from.first() {
        write_mailboxes(x, "t:From", std::slice::from_ref(a));
    }
    if let Some(id) = &s.message_id {
        x.leaf("t:InternetMessageId", id);
    }
    x.leaf(
        "t:IsResponseRequested",
        &bool_or_false("message:IsResponseRequested"),
    );
    if let Some(r) = &s.references {
        x.leaf("t:References", r);
    }
    write_mailboxes(x, "t:ReplyTo", &s.reply_to);
}

/// The attachments directly inside the message attached at `path` (not those of
/// messages attached to it in turn).
fn children_of(all: &[Attachment], path: &PartPath) -> Vec<Attachment> {
    let under = |a: &PartPath, p: &PartPath| a.0.len() > p.0.len() && a.0.starts_with(&p.0);
    all.iter()
        .filter(|a| {
            under(&a.path, path)
                && !all.iter().any(|m| {
                    m.content_type == "message/rfc822"
                        && under(&m.path, path)
                        && under(&a.path, &m.path)
                })
        })
        .cloned()
        .collect()
}

pub async fn get_attachment(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let shape = op.child("AttachmentShape");
    let mime = shape.is_some_and(|s| super::truthy(s.child_text("IncludeMimeContent")));
    let body_type = match shape.and_then(|s| s.child_text("BodyType")) {
        Some("HTML") => BodyType::Html,
        Some("Text") => BodyType::Text,
        _ => BodyType::Best,
    };
    let mut reply = Reply::begin(xml, "GetAttachment");
    for el in ids(op, "AttachmentIds") {
        let wire = el.attr("Id").unwrap_or("");
        let Some(at) = AttachmentRef::parse(wire) else {
            reply.fail(ResponseCode::ErrorInvalidIdMalformed);
            continue;
        };
        let found = match open_item(ctx, &at.item_element(), MailboxAction::ReadAttachment).await {
            Ok(f) => f,
            Err(code) => {
                reply.fail(code);
                continue;
            }
        };
        let raw = match stored_body(ctx, found.meta.body_id).await {
            Ok(raw) => raw,
            Err(code) => {
                reply.fail(code);
                continue;
            }
        };
        let msg = Message::parse(&raw);
        let found = at.find(&msg);
        let part = found.as_ref().and_then(|a| msg.part(&a.path.0));
        // The item is there, the attachment not (any more).
        let (Some(a), Some(part)) = (found.clone(), part) else {
            reply.fail(ResponseCode::ErrorInvalidAttachmentId);
            continue;
        };
        let content = part
            .decoded(&raw)
            .unwrap_or_else(|_| raw[part.body.clone()].to_vec());
        let x = reply.ok();
        x.open("m:Attachments", &[]);
        let name = a.file_name.as_deref().unwrap_or("attachment");
        if a.content_type == "message/rfc822" {
            let inner = Message::parse(&content);
            let summary = Summary::of(&inner);
            x.open("t:ItemAttachment", &[]);
            x.empty("t:AttachmentId", &[("Id", wire)]);
            x.leaf("t:Name", name)
                .leaf("t:ContentType", &a.content_type);
            x.leaf("t:Size", &a.size.to_string())
                .leaf("t:IsInline", "false");
            x.open("t:Message", &[]);
            if mime {
                x.base64_leaf("t:MimeContent", &[("CharacterSet", "UTF-8")], &content);
            }
            // Its own attachments, with ids into the stored message, so a client
            // can open an attached message's attachment in turn.
            let nested = children_of(&all_attachments(&msg), &a.path);
            write_attached_item(x, &inner, &summary, body_type, |x| {
                write_attachment_list(x, &at.item, &msg, &nested)
            });
            x.close("t:Message");
            x.close("t:ItemAttachment");
        } else {
            x.open("t:FileAttachment", &[]);
            x.empty("t:AttachmentId", &[("Id", wire)]);
            x.leaf("t:Name", name)
                .leaf("t:ContentType", &a.content_type);
            if let Some(cid) = &a.content_id {
                x.leaf("t:ContentId", cid);
            }
            x.leaf("t:Size", &content.len().to_string());
            x.leaf("t:IsInline", if a.inline { "true" } else { "false" });
            x.base64_leaf("t:Content", &[], &content);
            x.close("t:FileAttachment");
        }
        x.close("m:Attachments");
        reply.end();
    }
    reply.finish();
}

/// The attachment a `t:FileAttachment` or `t:ItemAttachment` of CreateAttachment
/// describes.
pub(super) fn new_part(
    ctx: &Context<'_>,
    el: &Element,
    owner: &str,
) -> Result<NewPart, ResponseCode> {
    let name = el.child_text("Name").unwrap_or("attachment").to_string();
    match el.name.as_str() {
        "FileAttachment" => {
            let b64: String = el
                .child_text("Content")
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            let content = STANDARD
                .decode(b64)
                .map_err(|_| ResponseCode::ErrorCorruptData)?;
            Ok(NewPart::File {
                content_type: el
                    .child_text("ContentType")
                    .filter(|c| !c.is_empty())
                    .unwrap_or("application/octet-stream")
                    .to_string(),
                content_id: el.child_text("ContentId").map(str::to_string),
                inline: super::truthy(el.child_text("IsInline")),
                name,
                content,
            })
        }
        "ItemAttachment" => {
            let item = el
                .children
                .iter()
                .find(|c| c.name == "Message" || c.name == "Item")
                .ok_or(ResponseCode::ErrorInvalidOperation)?;
            let raw = message_bytes(ctx, item, owner)?;
            let categories: Vec<String> = item
                .child("Categories")
                .map(|c| {
                    c.children
                        .iter()
                        .map(|s| s.text.trim().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let header = props::attached_header(&props::of_new_item(item)?, &categories);
            Ok(NewPart::Message {
                name,
                raw: [header.unwrap_or_default().into_bytes(), raw].concat(),
            })
        }
        _ => Err(ResponseCode::ErrorSchemaValidation),
    }
}

/// Replaces an item's message by `raw`, keeping its flags and properties (the
/// item keeps its id; IMAP sees a new UID).
async fn rewrite(
    ctx: &Context<'_>,
    found: &Found,
    raw: Vec<u8>,
) -> Result<MessageMeta, ResponseCode> {
    if raw.len() as u64 > ctx.ews.max_message_size {
        return Err(ResponseCode::ErrorMessageSizeExceeded);
    }
    let props = load_props(ctx, &found.meta.item_id).await?;
    let store = &ctx.ews.store;
    let stored = store
        .replace_message(
            found.folder.id,
            found.meta.uid,
            NewMessage {
                body: Arc::from(raw),
                internal_date: found.meta.internal_date,
                flags: found.meta.flags.clone(),
                properties: props.into_inner(),
            },
        )
        .await
        .map_err(store_error)?
        .map_err(refused)?;
    message_at(ctx, found.folder.id, stored.uid).await
}

fn write_root(xml: &mut Xml, el: &str, meta: &MessageMeta) {
    xml.empty(
        el,
        &[
            ("RootItemId", &EwsId::Item(meta.item_id.clone()).encode()),
            ("RootItemChangeKey", &meta.change_key()),
        ],
    );
}

/// CreateAttachment: adds file and item attachments to an item in one rewrite of
/// its message; one response message per attachment, in order.
pub async fn create_attachment(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let attachments = ids(op, "Attachments");
    let done = async {
        let parent = op
            .child("ParentItemId")
            .ok_or(ResponseCode::ErrorSchemaValidation)?;
        let found = open_item(ctx, parent, MailboxAction::Update).await?;
        let parts = attachments
            .iter()
            .map(|a| new_part(ctx, a, &found.folder.mailbox_id))
            .collect::<Result<Vec<_>, _>>()?;
        let raw = stored_body(ctx, found.meta.body_id).await?;
        let meta = rewrite(ctx, &found, add_parts(&raw, &parts)).await?;
        let now = stored_body(ctx, meta.body_id).await?;
        let msg = Message::parse(&now);
        let list = msg.attachments();
        let paths: Vec<&PartPath> = list[list.len().saturating_sub(parts.len())..]
            .iter()
            .map(|a| &a.path)
            .collect();
        let added = attachment_ids(&meta.item_id, &msg, &paths);
        Ok::<_, ResponseCode>((meta, added))
    }
    .await;
    let mut reply = Reply::begin(xml, "CreateAttachment");
    match done {
        Ok((meta, added)) => {
            for (a, el) in added.iter().zip(&attachments) {
                let x = reply.ok();
                x.open("m:Attachments", &[]);
                let kind = format!("t:{}", el.name);
                x.open(&kind, &[]);
                x.empty(
                    "t:AttachmentId",
                    &[
                        ("Id", a),
                        ("RootItemId", &EwsId::Item(meta.item_id.clone()).encode()),
                        ("RootItemChangeKey", &meta.change_key()),
                    ],
                );
                x.close(&kind);
                x.close("m:Attachments");
                reply.end();
            }
        }
        Err(code) => {
            for _ in &attachments {
                reply.fail(code);
            }
        }
    }
    reply.finish();
}

/// DeleteAttachment: removes the attachments, each item's in one rewrite (so
/// ids of several attachments of one item, taken before, all stay valid: the
/// parts go from the last to the first). Answers in request order; an id named
/// twice is gone the second time.
pub async fn delete_attachment(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let els = ids(op, "AttachmentIds");
    let refs: Vec<Option<AttachmentRef>> = els
        .iter()
        .map(|el| AttachmentRef::parse(el.attr("Id").unwrap_or("")))
        .collect();
    let mut answers: Vec<Result<MessageMeta, ResponseCode>> =
        vec![Err(ResponseCode::ErrorInvalidIdMalformed); refs.len()];
    let mut items: Vec<&str> = refs.iter().flatten().map(|r| r.item.as_str()).collect();
    items.sort_unstable();
    items.dedup();
    for item in items {
        let mine: Vec<usize> = (0..refs.len())
            .filter(|&i| refs[i].as_ref().is_some_and(|r| r.item == item))
            .collect();
        let at = |i: usize| refs[i].as_ref().expect("grouped ids parsed");
        let done = async {
            let found = open_item(ctx, &at(mine[0]).item_element(), MailboxAction::Update).await?;
            let raw = stored_body(ctx, found.meta.body_id).await?;
            let msg = Message::parse(&raw);
            let mut paths: Vec<(usize, PartPath)> = Vec::new();
            for &i in &mine {
                let r = at(i);
                if let Some(a) = r.find(&msg)
                    && !paths.iter().any(|(_, p)| *p == a.path)
                {
                    paths.push((i, a.path));
                }
            }
            let mut ordered: Vec<&PartPath> = paths.iter().map(|(_, p)| p).collect();
            ordered.sort_by(|a, b| b.cmp(a));
            let mut edited = raw.clone();
            for p in ordered {
                edited = remove_part(&edited, &p.0).ok_or(ResponseCode::ErrorItemNotFound)?;
            }
            let meta = rewrite(ctx, &found, edited).await?;
            Ok::<_, ResponseCode>((meta, paths))
        }
        .await;
        for &i in &mine {
            answers[i] = match &done {
                Ok((meta, removed)) if removed.iter().any(|(j, _)| *j == i) => Ok(meta.clone()),
                Ok(_) => Err(ResponseCode::ErrorInvalidAttachmentId),
                Err(code) => Err(*code),
            };
        }
    }
    let mut reply = Reply::begin(xml, "DeleteAttachment");
    for answer in answers {
        match answer {
            Ok(meta) => {
                let x = reply.ok();
                write_root(x, "m:RootItemId", &meta);
                reply.end();
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}
