//! ExportItems and UploadItems: an item as one opaque blob and back, for backup
//! and migration tools (exchangelib's `account.export`/`account.upload`).
//! Exchange's blob is a MAPI FastTransfer stream; clients never look inside, so
//! ours is what an item is here: the message byte for byte, its flags, its
//! received date and the properties kept beside it (`Blob`, versioned JSON,
//! base64 on the wire). An upload re-creates the item whole.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::folder::Trees;
use super::item::{load_props, message_at, open_item, stored_body};
use super::write::{refused, store_error, store_folder};
use super::{Reply, ids};
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::xml::{Element, Xml};
use crate::store::{MessageMeta, NewMessage, Property};

/// One exported item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Blob {
    /// The format's version (1).
    v: u32,
    /// The received date, milliseconds since the epoch.
    date: i64,
    flags: Vec<String>,
    /// Properties kept beside the message: name and base64 value.
    props: Vec<(String, String)>,
    /// The message, base64.
    mime: String,
}

impl Blob {
    /// The bytes whose base64 is ExportItems' `Data`.
    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    #[cfg(test)]
    fn encode(&self) -> String {
        STANDARD.encode(self.to_bytes())
    }

    fn decode(text: &str) -> Option<Blob> {
        let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let blob: Blob = serde_json::from_slice(&STANDARD.decode(clean).ok()?).ok()?;
        (blob.v == 1).then_some(blob)
    }

    /// The item it describes, to store.
    fn into_message(self) -> Option<NewMessage> {
        let body = STANDARD.decode(&self.mime).ok()?;
        let properties = self
            .props
            .into_iter()
            .map(|(k, v)| Some((k, STANDARD.decode(v).ok()?)))
            .collect::<Option<Vec<Property>>>()?;
        Some(NewMessage {
            body: Arc::from(body),
            internal_date: self.date,
            flags: self.flags,
            properties,
        })
    }
}

/// ExportItems: each item's blob, beside its id.
pub async fn export_items(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut reply = Reply::begin(xml, "ExportItems");
    for el in ids(op, "ItemIds") {
        let done = async {
            let found = open_item(ctx, el, MailboxAction::Read).await?;
            let raw = stored_body(ctx, found.meta.body_id).await?;
            let props = load_props(ctx, &found.meta.item_id).await?;
            let blob = Blob {
                v: 1,
                date: found.meta.internal_date,
                flags: found.meta.flags.clone(),
                props: props
                    .into_inner()
                    .into_iter()
                    .map(|(k, v)| (k, STANDARD.encode(v)))
                    .collect(),
                mime: STANDARD.encode(raw),
            };
            Ok::<_, ResponseCode>((found.meta, blob.to_bytes()))
        }
        .await;
        match done {
            Ok((meta, data)) => {
                let x = reply.ok();
                write_id(x, &meta);
                x.base64_leaf("m:Data", &[], &data);
                reply.end();
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

fn write_id(x: &mut Xml, meta: &MessageMeta) {
    x.empty(
        "m:ItemId",
        &[
            ("Id", &EwsId::Item(meta.item_id.clone()).encode()),
            ("ChangeKey", &meta.change_key()),
        ],
    );
}

/// UploadItems: `CreateNew` stores each blob as a new item in its ParentFolderId;
/// `Update` (and `UpdateOrCreate` for an item that exists) replaces the item its
/// ItemId names, which keeps its id and gets a new ChangeKey.
pub async fn upload_items(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "UploadItems");
    for el in ids(op, "Items") {
        let done = async {
            let message = el
                .child_text("Data")
                .and_then(Blob::decode)
                .and_then(Blob::into_message)
                .ok_or(ResponseCode::ErrorCorruptData)?;
            if message.body.len() as u64 > ctx.ews.max_message_size {
                return Err(ResponseCode::ErrorMessageSizeExceeded);
            }
            let action = el.attr("CreateAction").unwrap_or("CreateNew");
            let existing = match (action, el.child("ItemId")) {
                ("Update" | "UpdateOrCreate", Some(id)) => {
                    match open_item(ctx, id, MailboxAction::Update).await {
                        Ok(found) => Some(found),
                        Err(_) if action == "UpdateOrCreate" => None,
                        Err(code) => return Err(code),
                    }
                }
                ("Update", None) => return Err(ResponseCode::ErrorItemNotFound),
                _ => None,
            };
            let store = &ctx.ews.store;
            let (folder_id, stored) = match existing {
                Some(found) => {
                    let stored = store
                        .replace_message(found.folder.id, found.meta.uid, message)
                        .await
                        .map_err(store_error)?
                        .map_err(refused)?;
                    (found.folder.id, stored)
                }
                None => {
                    // A `t:ParentFolderId` names a folder as a `t:FolderId` does.
                    let parent = Element {
                        name: "FolderId".into(),
                        ..el.child("ParentFolderId")
                            .ok_or(ResponseCode::ErrorFolderNotFound)?
                            .clone()
                    };
                    let folder =
                        store_folder(ctx, &mut trees, &parent, MailboxAction::Create).await?;
                    let stored = store
                        .append_all(folder.id, vec![message])
                        .await
                        .map_err(store_error)?
                        .map_err(refused)?
                        .pop()
                        .ok_or(ResponseCode::ErrorInternalServerError)?;
                    (folder.id, stored)
                }
            };
            message_at(ctx, folder_id, stored.uid).await
        }
        .await;
        match done {
            Ok(meta) => {
                let x = reply.ok();
                write_id(x, &meta);
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

    #[test]
    fn blobs_round_trip_and_refuse_garbage() {
        let blob = Blob {
            v: 1,
            date: 5,
            flags: vec!["\\Seen".into()],
            props: vec![("tag:0036".into(), STANDARD.encode(b"Integer\x003"))],
            mime: STANDARD.encode(b"Subject: x\r\n\r\ny"),
        };
        let back = Blob::decode(&blob.encode()).unwrap();
        assert_eq!(back, blob);
        let m = back.into_message().unwrap();
        assert_eq!(&m.body[..], b"Subject: x\r\n\r\ny");
        assert_eq!(
            m.properties,
            [("tag:0036".into(), b"Integer\x003".to_vec())]
        );
        assert!(Blob::decode("not base64!").is_none());
        assert!(Blob::decode(&STANDARD.encode(b"{}")).is_none());
        let v2 = Blob { v: 2, ..blob };
        assert!(Blob::decode(&v2.encode()).is_none(), "an unknown version");
    }
}
