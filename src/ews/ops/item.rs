//! Reading items: FindItem (paging, sorting, restrictions over a folder) and GetItem
//! (any shape, MIME content, bodies).

use super::folder::{Trees, open_folder, paging, root_folder_attrs};
use super::restrict::{self, Expr, Values};
use super::shape::Shape;
use super::{Reply, ids};
use crate::access::mailbox::Object;
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::item::{Item, Summary, needs_message, needs_props, write_message};
use crate::ews::props::ItemProps;
use crate::ews::xml::{Element, Xml};
use crate::message::Message;
use crate::store::{Folder, MessageMeta};

/// Messages whose content one FindItem may read to filter or sort: beyond it the
/// request is refused rather than pinning the daemon on a huge folder.
const SCAN_BUDGET: usize = 20_000;

/// A message resolved from an ItemId, with the folder that holds it.
pub struct Found {
    pub folder: Folder,
    pub meta: MessageMeta,
}

/// Resolves an `ItemId` element and checks `action` on its mailbox (audited).
pub async fn open_item(
    ctx: &Context<'_>,
    el: &Element,
    action: MailboxAction,
) -> Result<Found, ResponseCode> {
    let id = match EwsId::decode(el.attr("Id").unwrap_or("")) {
        Ok(EwsId::Item(id)) => id,
        _ => return Err(ResponseCode::ErrorInvalidIdMalformed),
    };
    if el
        .attr("ChangeKey")
        .is_some_and(|k| !k.is_empty() && !crate::store::is_change_key(k))
    {
        return Err(ResponseCode::ErrorInvalidChangeKey);
    }
    let (folder, meta) = ctx
        .ews
        .store
        .message_by_item_id(&id)
        .await
        .map_err(|_| ResponseCode::ErrorItemNotFound)?;
    let fid = EwsId::Folder(folder.item_id.clone()).encode();
    let wire = el.attr("Id").unwrap_or("");
    let object = Object {
        kind: None,
        folder_path: Some(&folder.name),
        folder_id: Some(&fid),
        item_id: Some(wire),
    };
    ctx.authorize(&folder.mailbox_id, action, object)?;
    Ok(Found { folder, meta })
}

/// Writes one message of `folder` as `shape` asks, reading its content only when
/// needed.
pub async fn write_meta(
    ctx: &Context<'_>,
    xml: &mut Xml,
    meta: &MessageMeta,
    folder: &EwsId,
    shape: &Shape,
    find: bool,
) -> Result<(), ResponseCode> {
    let raw = if needs_message(shape) {
        Some(
            ctx.ews
                .store
                .body(meta.body_id)
                .await
                .map_err(|_| ResponseCode::ErrorItemNotFound)?,
        )
    } else {
        None
    };
    let msg = raw.as_deref().map(Message::parse);
    let summary = msg.as_ref().map(Summary::of);
    let props = if needs_props(shape) {
        Some(load_props(ctx, &meta.item_id).await?)
    } else {
        None
    };
    let item = Item {
        meta,
        folder,
        message: msg.as_ref(),
        summary: summary.as_ref(),
        props: props.as_ref(),
    };
    write_message(xml, &item, shape, find);
    Ok(())
}

/// A message's metadata as it is now (after a write that gave it `uid`).
pub async fn message_at(
    ctx: &Context<'_>,
    folder_id: i64,
    uid: u32,
) -> Result<MessageMeta, ResponseCode> {
    ctx.ews
        .store
        .messages(folder_id, uid, uid)
        .await
        .map_err(|_| ResponseCode::ErrorInternalServerError)?
        .pop()
        .ok_or(ResponseCode::ErrorItemNotFound)
}

/// A stored message's bytes (a body gone meanwhile: the item went with it).
pub async fn stored_body(ctx: &Context<'_>, body_id: i64) -> Result<Vec<u8>, ResponseCode> {
    ctx.ews
        .store
        .body(body_id)
        .await
        .map_err(|_| ResponseCode::ErrorItemNotFound)
}

/// The properties kept beside one item.
pub async fn load_props(ctx: &Context<'_>, item_id: &str) -> Result<ItemProps, ResponseCode> {
    let mut found = ctx
        .ews
        .store
        .properties(vec![item_id.to_string()])
        .await
        .map_err(|_| ResponseCode::ErrorInternalServerError)?;
    Ok(ItemProps::new(found.remove(item_id).unwrap_or_default()))
}

/// GetItem: one message per requested id, in order.
pub async fn get_item(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let shape = Shape::parse(op.child("ItemShape"));
    let mut reply = Reply::begin(xml, "GetItem");
    for el in ids(op, "ItemIds") {
        match open_item(ctx, el, MailboxAction::Read).await {
            Ok(found) => {
                let x = reply.ok();
                x.open("m:Items", &[]);
                let folder = EwsId::Folder(found.folder.item_id.clone());
                let written = write_meta(ctx, x, &found.meta, &folder, &shape, false).await;
                x.close("m:Items");
                reply.end();
                if let Err(code) = written {
                    tracing::warn!(?code, "GetItem: message body unreadable");
                }
            }
            Err(code) => reply.fail(code),
        }
    }
    reply.finish();
}

/// One message of a folder with what filtering and sorting read.
struct Candidate {
    meta: MessageMeta,
    summary: Option<Summary>,
    body: Option<String>,
    props: Option<ItemProps>,
}

/// FindItem over each parent folder.
pub async fn find_item(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let shape = Shape::parse(op.child("ItemShape"));
    let query = op
        .child("QueryString")
        .map(|q| restrict::parse_aqs(&q.text));
    let restriction = match query
        .or_else(|| op.child("Restriction").map(restrict::parse))
        .transpose()
    {
        Ok(r) => r,
        Err(code) => {
            let mut reply = Reply::begin(xml, "FindItem");
            for _ in ids(op, "ParentFolderIds") {
                reply.fail(code);
            }
            return reply.finish();
        }
    };
    let sort = restrict::parse_sort(op.child("SortOrder"));
    let associated = matches!(op.attr("Traversal"), Some("Associated" | "SoftDeleted"));
    let calendar_view = op.child("CalendarView").is_some();
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "FindItem");
    for el in ids(op, "ParentFolderIds") {
        let folder = match open_folder(ctx, &mut trees, el, MailboxAction::ReadSummary).await {
            Ok((_, view)) => view,
            Err(code) => {
                reply.fail(code);
                continue;
            }
        };
        let metas = match (&folder.store, associated || calendar_view) {
            (Some(f), false) => match ctx.ews.store.messages(f.id, 1, u32::MAX).await {
                Ok(m) => m,
                Err(_) => {
                    reply.fail(ResponseCode::ErrorFolderNotFound);
                    continue;
                }
            },
            _ => Vec::new(),
        };
        let found = match select(ctx, metas, restriction.as_ref(), &sort).await {
            Ok(found) => found,
            Err(code) => {
                reply.error(code, "The restriction or sort would read more messages than one request may; narrow the query.");
                continue;
            }
        };
        let (offset, max) = paging(op, found.len());
        let page: Vec<&Candidate> = found.iter().skip(offset).take(max).collect();
        let attrs = root_folder_attrs(offset, page.len(), found.len());
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let x = reply.ok();
        x.open("m:RootFolder", &attrs);
        x.open("t:Items", &[]);
        for c in page {
            let _ = write_meta(ctx, x, &c.meta, &folder.id, &shape, true).await;
        }
        x.close("t:Items");
        x.close("m:RootFolder");
        reply.end();
    }
    reply.finish();
}

/// Filters and sorts a folder's messages (newest first when unsorted), reading
/// message content only when the restriction or sort needs it.
async fn select(
    ctx: &Context<'_>,
    metas: Vec<MessageMeta>,
    restriction: Option<&Expr>,
    sort: &[restrict::Order],
) -> Result<Vec<Candidate>, ResponseCode> {
    let content =
        restriction.is_some_and(restrict::needs_message) || restrict::sort_needs_message(sort);
    let body = restriction.is_some_and(restrict::needs_body);
    if content && metas.len() > SCAN_BUDGET {
        return Err(ResponseCode::ErrorServerBusy);
    }
    let stored = restriction.is_some_and(restrict::needs_props) || restrict::sort_needs_props(sort);
    let mut props = if stored {
        let ids = metas.iter().map(|m| m.item_id.clone()).collect();
        ctx.ews
            .store
            .properties(ids)
            .await
            .map_err(|_| ResponseCode::ErrorInternalServerError)?
    } else {
        Default::default()
    };
    let mut out = Vec::with_capacity(metas.len());
    for meta in metas {
        let props = stored.then(|| ItemProps::new(props.remove(&meta.item_id).unwrap_or_default()));
        let (summary, text) = if content {
            let raw = ctx.ews.store.body(meta.body_id).await.unwrap_or_default();
            let msg = Message::parse(&raw);
            let text = body.then(|| {
                let b = msg.bodies();
                b.text
                    .or(b.html)
                    .map(|l| l.part.text(msg.raw()))
                    .unwrap_or_default()
            });
            (Some(Summary::of(&msg)), text)
        } else {
            (None, None)
        };
        let keep = restriction.is_none_or(|r| {
            restrict::eval(
                r,
                &Values {
                    meta: &meta,
                    summary: summary.as_ref(),
                    body: text.as_deref(),
                    props: props.as_ref(),
                },
            )
        });
        if keep {
            out.push(Candidate {
                meta,
                summary,
                body: None,
                props,
            });
        }
    }
    if sort.is_empty() {
        out.sort_by(|a, b| {
            b.meta
                .internal_date
                .cmp(&a.meta.internal_date)
                .then(b.meta.uid.cmp(&a.meta.uid))
        });
    } else {
        // Ties (same second) keep arrival order in the direction of the first key.
        let newest_first = sort[0].descending;
        out.sort_by(|a, b| {
            let va = Values {
                meta: &a.meta,
                summary: a.summary.as_ref(),
                body: a.body.as_deref(),
                props: a.props.as_ref(),
            };
            let vb = Values {
                meta: &b.meta,
                summary: b.summary.as_ref(),
                body: b.body.as_deref(),
                props: b.props.as_ref(),
            };
            let by_uid = if newest_first {
                b.meta.uid.cmp(&a.meta.uid)
            } else {
                a.meta.uid.cmp(&b.meta.uid)
            };
            restrict::compare(sort, &va, &vb).then(by_uid)
        });
    }
    Ok(out)
}
