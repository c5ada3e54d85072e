//! UpdateItem: flags (read state, follow-up flag, categories), the properties
//! kept beside the message, and a draft's content (rebuilt from its fields, or a
//! whole new MimeContent) under the same item id, checked against the ChangeKey
//! the client holds; SendOnly and SendAndSaveCopy then send the draft.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::compose::{compose, draft_fields};
use super::item::{Found, load_props, message_at, open_item, stored_body};
use super::shape::{Extended, Path};
use super::write::{categories, refused, send_stored, store_error, write_items};
use super::{Reply, ids, truthy};
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::item::{category_to_keyword, keyword_to_category};
use crate::ews::props::{self, Edit};
use crate::ews::xml::{Element, Xml};
use crate::store::{ItemChange, MessageMeta, NewMessage, Property};
use crate::submission::SavedCopy;

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

/// UpdateItem: each change checked against the ChangeKey the client holds unless
/// it asked to overwrite; with SendOnly or SendAndSaveCopy the updated draft is
/// sent and the answer names no item.
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
                properties: Vec::new(),
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
/// over as they were. `mime` is the MIME the UpdateItem set, if it set one.
async fn rewrite_draft(
    ctx: &Context<'_>,
    folder: &crate::store::Folder,
    meta: &MessageMeta,
    updates: &Element,
    mime: Option<Vec<u8>>,
    flags: Vec<String>,
    properties: Vec<Property>,
) -> Result<MessageMeta, ResponseCode> {
    let store = &ctx.ews.store;
    let draft = meta.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Draft"));
    if !draft {
        return Err(ResponseCode::ErrorInvalidPropertySet);
    }
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
    message_at(ctx, folder.id, stored.uid).await
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
    let mime = new_mime(updates)?;
    if changes_content(updates) || mime.is_some() {
        let current = load_props(ctx, &meta.item_id).await?;
        let properties = props::apply(current, &edits);
        return rewrite_draft(ctx, &folder, &meta, updates, mime, flags, properties).await;
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
    message_at(ctx, folder.id, meta.uid).await
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
}
