//! Reading items: FindItem (paging, sorting, restrictions over a folder) and GetItem
//! (any shape, MIME content, bodies).

use super::folder::{Trees, open_folder, paging, root_folder_attrs};
use super::restrict::{self, Expr, Values};
use super::shape::Shape;
use super::write::store_error;
use super::{Reply, ids};
use crate::access::mailbox::Object;
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::item::{Item, Summary, needs_message, needs_parse, needs_props, write_message};
use crate::ews::props::ItemProps;
use crate::ews::xml::{Element, Xml};
use crate::message::Message;
use crate::store::{Folder, MessageMeta, Property};
use std::collections::HashMap;

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
    open_items(ctx, &[el], action)
        .await
        .pop()
        .unwrap_or(Err(ResponseCode::ErrorItemNotFound))
}

/// Resolves `ItemId` elements in one store read and checks `action` on each
/// one's mailbox (audited); one answer per element, in order.
pub async fn open_items(
    ctx: &Context<'_>,
    els: &[&Element],
    action: MailboxAction,
) -> Vec<Result<Found, ResponseCode>> {
    let wanted: Vec<Result<String, ResponseCode>> = els.iter().map(|el| item_id_of(el)).collect();
    let asked: Vec<String> = wanted.iter().filter_map(|w| w.clone().ok()).collect();
    let mut found = match ctx.ews.store.messages_by_item_ids(asked).await {
        Ok(found) => found.into_iter(),
        Err(e) => {
            let code = store_error(e);
            return els.iter().map(|_| Err(code)).collect();
        }
    };
    let mut out = Vec::with_capacity(els.len());
    for (el, wanted) in els.iter().zip(wanted) {
        out.push(wanted.and_then(|_| {
            let (folder, meta) = found
                .next()
                .flatten()
                .ok_or(ResponseCode::ErrorItemNotFound)?;
            let fid = EwsId::Folder(folder.item_id.clone()).encode();
            let object = Object {
                kind: None,
                folder_path: Some(&folder.name),
                folder_id: Some(&fid),
                item_id: el.attr("Id"),
            };
            ctx.authorize(&folder.mailbox_id, action, object)?;
            Ok(Found { folder, meta })
        }));
    }
    out
}

/// The store item id an `ItemId` element names, its ChangeKey checked for form.
fn item_id_of(el: &Element) -> Result<String, ResponseCode> {
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
    Ok(id)
}

/// Message bytes one batch of [`load`] may hold: large enough that a page of
/// ordinary messages is one store read, small enough that a page of huge ones
/// is not all in memory at once.
const LOAD_BUDGET: u64 = 8 << 20;

/// What writing messages in one shape reads beyond their metadata, for a batch
/// of messages in at most two store reads (bodies, properties).
#[derive(Default)]
pub struct Loaded {
    bodies: HashMap<i64, Vec<u8>>,
    props: HashMap<String, Vec<Property>>,
}

/// Reads what `shape` needs of `metas`: their bodies only when the shape needs
/// the message, their properties only when it names one.
pub async fn load(
    ctx: &Context<'_>,
    metas: &[&MessageMeta],
    shape: &Shape,
) -> Result<Loaded, ResponseCode> {
    let mut loaded = Loaded::default();
    if metas.is_empty() {
        return Ok(loaded);
    }
    if needs_message(shape) {
        let ids: Vec<i64> = metas.iter().map(|m| m.body_id).collect();
        let bodies = ctx
            .ews
            .store
            .bodies(ids.clone())
            .await
            .map_err(store_error)?;
        loaded.bodies = ids
            .into_iter()
            .zip(bodies)
            .filter_map(|(id, b)| Some((id, b?)))
            .collect();
    }
    if needs_props(shape) {
        let ids = metas.iter().map(|m| m.item_id.clone()).collect();
        loaded.props = ctx.ews.store.properties(ids).await.map_err(store_error)?;
    }
    Ok(loaded)
}

/// Splits `items` into runs for [`load`]: within [`LOAD_BUDGET`] of message bytes
/// when `shape` reads bodies, else one run.
pub fn load_runs<'a, T>(
    items: &'a [T],
    shape: &Shape,
    size: impl Fn(&T) -> u64,
) -> impl Iterator<Item = &'a [T]> {
    let bodies = needs_message(shape);
    budget_runs(items, move |t| if bodies { size(t) } else { 0 })
}

/// Splits `items` into runs whose sizes stay within [`LOAD_BUDGET`], each run at
/// least one item.
fn budget_runs<T>(items: &[T], size: impl Fn(&T) -> u64) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut used = 0u64;
        let mut n = 0;
        while n < rest.len() && (n == 0 || used + size(&rest[n]) <= LOAD_BUDGET) {
            used += size(&rest[n]);
            n += 1;
        }
        let (run, tail) = rest.split_at(n);
        rest = tail;
        Some(run)
    })
}

/// Writes one message of `folder` as `shape` asks from what [`load`] read for
/// the same shape; `ErrorItemNotFound` (nothing written) when its body went
/// meanwhile.
pub fn write_loaded(
    xml: &mut Xml,
    loaded: &Loaded,
    meta: &MessageMeta,
    folder: &EwsId,
    shape: &Shape,
    find: bool,
) -> Result<(), ResponseCode> {
    let raw = match needs_message(shape) {
        true => Some(
            loaded
                .bodies
                .get(&meta.body_id)
                .ok_or(ResponseCode::ErrorItemNotFound)?
                .as_slice(),
        ),
        false => None,
    };
    let msg = raw.filter(|_| needs_parse(shape)).map(Message::parse);
    let summary = msg.as_ref().map(Summary::of);
    let props = needs_props(shape)
        .then(|| ItemProps::new(loaded.props.get(&meta.item_id).cloned().unwrap_or_default()));
    let item = Item {
        meta,
        folder,
        raw,
        message: msg.as_ref(),
        summary: summary.as_ref(),
        props: props.as_ref(),
    };
    write_message(xml, &item, shape, find);
    Ok(())
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
    let loaded = load(ctx, &[meta], shape).await?;
    write_loaded(xml, &loaded, meta, folder, shape, find)
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
        .map_err(store_error)?
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
        .map_err(store_error)?;
    Ok(ItemProps::new(found.remove(item_id).unwrap_or_default()))
}

/// GetItem: one message per requested id, in order; ids resolved in one store
/// read, bodies and properties a run at a time.
pub async fn get_item(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let shape = Shape::parse(op.child("ItemShape"));
    let found = open_items(ctx, &ids(op, "ItemIds"), MailboxAction::Read).await;
    if shape.include_mime || shape.names("item:MimeContent") {
        let bytes: u64 = found.iter().flatten().map(|f| f.meta.size).sum();
        xml.reserve(
            usize::try_from(bytes / 3 * 4)
                .unwrap_or(0)
                .min(LOAD_BUDGET as usize * 2),
        );
    }
    let mut reply = Reply::begin(xml, "GetItem");
    let size = |f: &Result<Found, ResponseCode>| f.as_ref().map_or(0, |f| f.meta.size);
    for run in load_runs(&found, &shape, size) {
        let metas: Vec<&MessageMeta> = run.iter().flatten().map(|f| &f.meta).collect();
        let loaded = load(ctx, &metas, &shape).await;
        for f in run {
            let (found, loaded) = match (f, &loaded) {
                (Ok(found), Ok(loaded)) => (found, loaded),
                (Err(code), _) | (_, Err(code)) => {
                    reply.fail(*code);
                    continue;
                }
            };
            let x = reply.ok();
            x.open("m:Items", &[]);
            let folder = EwsId::Folder(found.folder.item_id.clone());
            let written = write_loaded(x, loaded, &found.meta, &folder, &shape, false);
            x.close("m:Items");
            reply.end();
            if let Err(code) = written {
                tracing::warn!(?code, "GetItem: message body unreadable");
            }
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

impl Candidate {
    /// A message nothing was read of beyond its metadata.
    fn bare(meta: MessageMeta) -> Candidate {
        Candidate {
            meta,
            summary: None,
            body: None,
            props: None,
        }
    }
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
        // Associated items and calendar views list nothing here.
        let listed = folder
            .store
            .as_ref()
            .filter(|_| !associated && !calendar_view);
        let (page, offset, total) = match listed {
            // Unfiltered and unsorted (newest first): only the page is read.
            Some(f) if restriction.is_none() && sort.is_empty() => {
                let total = f.messages as usize;
                let (offset, max) = paging(op, total);
                let limit = max.min(total);
                match ctx
                    .ews
                    .store
                    .messages_newest_first(f.id, offset, limit)
                    .await
                {
                    Ok(metas) => (
                        metas.into_iter().map(Candidate::bare).collect(),
                        offset,
                        total,
                    ),
                    Err(_) => {
                        reply.fail(ResponseCode::ErrorFolderNotFound);
                        continue;
                    }
                }
            }
            _ => {
                let metas = match listed {
                    Some(f) => match ctx.ews.store.messages(f.id, 1, u32::MAX).await {
                        Ok(m) => m,
                        Err(_) => {
                            reply.fail(ResponseCode::ErrorFolderNotFound);
                            continue;
                        }
                    },
                    None => Vec::new(),
                };
                let found = match select(ctx, metas, restriction.as_ref(), &sort).await {
                    Ok(found) => found,
                    Err(code) => {
                        reply.error(code, "The restriction or sort would read more messages than one request may; narrow the query.");
                        continue;
                    }
                };
                let total = found.len();
                let (offset, max) = paging(op, total);
                let page: Vec<Candidate> = found.into_iter().skip(offset).take(max).collect();
                (page, offset, total)
            }
        };
        let attrs = root_folder_attrs(offset, page.len(), total);
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Written aside first: a store read failing half way answers an error
        // rather than a page with holes.
        let mut items = Xml::fragment();
        let mut failed = None;
        for run in load_runs(&page, &shape, |c| c.meta.size) {
            let metas: Vec<&MessageMeta> = run.iter().map(|c| &c.meta).collect();
            match load(ctx, &metas, &shape).await {
                Ok(loaded) => {
                    for c in run {
                        let _ =
                            write_loaded(&mut items, &loaded, &c.meta, &folder.id, &shape, true);
                    }
                }
                Err(code) => {
                    failed = Some(code);
                    break;
                }
            }
        }
        if let Some(code) = failed {
            reply.fail(code);
            continue;
        }
        let x = reply.ok();
        x.open("m:RootFolder", &attrs);
        x.open("t:Items", &[]);
        x.raw(&String::from_utf8_lossy(&items.finish()));
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
        ctx.ews.store.properties(ids).await.map_err(store_error)?
    } else {
        Default::default()
    };
    let mut out = Vec::with_capacity(metas.len());
    let size = |m: &MessageMeta| if content { m.size } else { 0 };
    for run in budget_runs(&metas, size) {
        let mut raws = match content {
            true => {
                let ids = run.iter().map(|m| m.body_id).collect();
                let raws = ctx.ews.store.bodies(ids).await;
                raws.map_err(store_error)?
            }
            false => Vec::new(),
        }
        .into_iter();
        for meta in run {
            let props =
                stored.then(|| ItemProps::new(props.remove(&meta.item_id).unwrap_or_default()));
            let (summary, text) = match raws.next() {
                Some(raw) => {
                    let raw = raw.unwrap_or_default();
                    let msg = Message::parse(&raw);
                    let text = body.then(|| {
                        let b = msg.bodies();
                        b.text
                            .or(b.html)
                            .map(|l| l.part.text(msg.raw()))
                            .unwrap_or_default()
                    });
                    (Some(Summary::of(&msg)), text)
                }
                None => (None, None),
            };
            let keep = restriction.is_none_or(|r| {
                restrict::eval(
                    r,
                    &Values {
                        meta,
                        summary: summary.as_ref(),
                        body: text.as_deref(),
                        props: props.as_ref(),
                    },
                )
            });
            if keep {
                out.push(Candidate {
                    meta: meta.clone(),
                    summary,
                    body: None,
                    props,
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_stay_within_the_budget_and_lose_nothing() {
        let sizes = [LOAD_BUDGET / 2, LOAD_BUDGET / 2, 1, LOAD_BUDGET * 3, 5, 5];
        let runs: Vec<&[u64]> = budget_runs(&sizes, |s| *s).collect();
        assert_eq!(
            runs,
            vec![&sizes[..2], &sizes[2..3], &sizes[3..4], &sizes[4..]],
            "a run closes before the item that would pass the budget; a huge item runs alone"
        );
        assert_eq!(budget_runs(&[] as &[u64], |s| *s).count(), 0);
        let free = [u64::MAX; 3];
        assert_eq!(
            budget_runs(&free, |_| 0).count(),
            1,
            "sizeless items: one run"
        );
    }
}
