//! GetAttachment: an attachment's content, found by its part path in the stored
//! message (file attachments as base64 Content, attached messages as an item with
//! their MIME content).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::item::open_item;
use super::{Reply, ids};
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::item::Summary;
use crate::ews::xml::{Element, Xml};
use crate::message::{Message, PartPath};

/// Splits an attachment id into the item's id and the part path.
fn parse_id(id: &str) -> Option<(String, PartPath)> {
    let EwsId::Attachment(v) = EwsId::decode(id).ok()? else {
        return None;
    };
    let (item, path) = v.split_once(':')?;
    Some((item.to_string(), path.parse().ok()?))
}

pub async fn get_attachment(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mime = op
        .child("AttachmentShape")
        .is_some_and(|s| super::truthy(s.child_text("IncludeMimeContent")));
    let mut reply = Reply::begin(xml, "GetAttachment");
    for el in ids(op, "AttachmentIds") {
        let wire = el.attr("Id").unwrap_or("");
        let Some((item, path)) = parse_id(wire) else {
            reply.fail(ResponseCode::ErrorInvalidIdMalformed);
            continue;
        };
        let item_el = Element {
            name: "ItemId".into(),
            attrs: vec![("Id".into(), EwsId::Item(item).encode())],
            ..Element::default()
        };
        let found = match open_item(ctx, &item_el, MailboxAction::ReadAttachment).await {
            Ok(f) => f,
            Err(code) => {
                reply.fail(code);
                continue;
            }
        };
        let raw = match ctx.ews.store.body(found.meta.body_id).await {
            Ok(raw) => raw,
            Err(_) => {
                reply.fail(ResponseCode::ErrorItemNotFound);
                continue;
            }
        };
        let msg = Message::parse(&raw);
        let listed = msg.attachments().into_iter().find(|a| a.path == path);
        let (Some(a), Some(part)) = (listed, msg.part(&path.0)) else {
            reply.fail(ResponseCode::ErrorItemNotFound);
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
                x.leaf_with(
                    "t:MimeContent",
                    &[("CharacterSet", "UTF-8")],
                    &STANDARD.encode(&content),
                );
            }
            x.leaf("t:Subject", &summary.subject);
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
            x.leaf("t:Content", &STANDARD.encode(&content));
            x.close("t:FileAttachment");
        }
        x.close("m:Attachments");
        reply.end();
    }
    reply.finish();
}
