//! Notifications: Subscribe (pull and streaming; push is refused with a clear
//! error), GetEvents, GetStreamingEvents and Unsubscribe, over
//! `ews::subscriptions` and the store's change feed and wake-ups.
//!
//! A streaming response is one chunked HTTP body of complete SOAP envelopes: the
//! first with the XML declaration, each later one without (strict parsers refuse
//! a second declaration); one envelope per batch of events, a heartbeat while
//! nothing happens, and a last one with `ConnectionStatus` Closed when the client's
//! ConnectionTimeout ends it or its access was revoked.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

use super::folder::{Trees, open_folder};
use super::{Answer, Reply, truthy};
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::envelope;
use crate::ews::feed::{self, Feed};
use crate::ews::ids::EwsId;
use crate::ews::item::xsd_datetime;
use crate::ews::subscriptions::{
    Event, EventTypes, STREAMING_IDLE, Subscription, Unusable, events_for, parse_watermark,
    watermark,
};
use crate::ews::xml::{Element, Xml};

/// Feed entries read for one batch of events.
const EVENT_BATCH: usize = 512;
/// A heartbeat this often while a stream has nothing to say.
const HEARTBEAT: Duration = Duration::from_secs(45);
/// How often a stream re-checks that its caller may still read (a rule, password
/// or role change ends it within this long).
const RECHECK: Duration = Duration::from_secs(1);

fn unusable(u: Unusable) -> ResponseCode {
    match u {
        Unusable::NotFound => ResponseCode::ErrorSubscriptionNotFound,
        Unusable::TooMany => ResponseCode::ErrorExceededSubscriptionCount,
    }
}

/// Subscribe: one message per request (EWS takes one subscription request).
pub async fn subscribe(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut reply = Reply::begin(xml, "Subscribe");
    let Some(req) = op.children.first() else {
        reply.fail(ResponseCode::ErrorSchemaValidation);
        return reply.finish();
    };
    let streaming = match req.name.as_str() {
        "PullSubscriptionRequest" => false,
        "StreamingSubscriptionRequest" => true,
        _ => {
            reply.error(
                ResponseCode::ErrorInvalidSubscriptionRequest,
                "Push subscriptions are not served; use pull or streaming subscriptions.",
            );
            return reply.finish();
        }
    };
    match new_subscription(ctx, req, streaming).await {
        Ok(sub) => {
            let start = sub.watermark;
            match ctx.ews.subscriptions.add(sub) {
                Ok(id) => {
                    let x = reply.ok();
                    x.leaf("m:SubscriptionId", &id);
                    if !streaming {
                        x.leaf("m:Watermark", &watermark(start));
                    }
                    reply.end();
                }
                Err(u) => reply.fail(unusable(u)),
            }
        }
        Err(code) => reply.fail(code),
    }
    reply.finish();
}

async fn new_subscription(
    ctx: &Context<'_>,
    req: &Element,
    streaming: bool,
) -> Result<Subscription, ResponseCode> {
    let mut trees = Trees::default();
    let all = truthy(req.attr("SubscribeToAllFolders"));
    let mut mailbox = None;
    let mut folders = HashSet::new();
    for el in req
        .child("FolderIds")
        .map(|f| f.children.iter().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let (owner, view) = open_folder(ctx, &mut trees, el, MailboxAction::ReadSummary).await?;
        if mailbox.get_or_insert_with(|| owner.clone()) != &owner {
            return Err(ResponseCode::ErrorInvalidSubscriptionRequest);
        }
        if let Some(id) = view.store_id() {
            folders.insert(id);
        }
    }
    let mailbox = match mailbox {
        Some(m) => m,
        None if all => ctx.own_mailbox()?.to_string(),
        None => return Err(ResponseCode::ErrorInvalidSubscriptionRequest),
    };
    let store = &ctx.ews.store;
    let latest = store.latest_change(&mailbox).await.unwrap_or(0);
    let start = match req.child_text("Watermark").filter(|w| !w.is_empty()) {
        Some(w) => {
            let start = parse_watermark(w)
                .filter(|s| *s <= latest)
                .ok_or(ResponseCode::ErrorInvalidWatermark)?;
            // A watermark older than what the store kept of its feed cannot
            // be continued from.
            if let Err(crate::store::StoreError::FeedPruned) =
                store.changes_since(&mailbox, start, 1).await
            {
                return Err(ResponseCode::ErrorInvalidWatermark);
            }
            start
        }
        None => latest,
    };
    let timeout = if streaming {
        STREAMING_IDLE
    } else {
        let minutes: u64 = req
            .child_text("Timeout")
            .and_then(|t| t.parse().ok())
            .unwrap_or(30);
        if !(1..=1440).contains(&minutes) {
            return Err(ResponseCode::ErrorInvalidSubscriptionRequest);
        }
        Duration::from_secs(minutes * 60)
    };
    let events = EventTypes::parse(
        req.child("EventTypes")
            .map(|e| {
                e.children
                    .iter()
                    .map(|c| c.text.as_str())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter(),
    );
    Ok(Subscription {
        id: String::new(),
        mailbox,
        creator: ctx.creator(),
        folders: (!all).then_some(folders),
        events,
        watermark: start,
        streaming,
        timeout,
        last_used: Instant::now(),
    })
}

/// The events after a subscription's watermark (at most one batch), the new
/// watermark, and whether more are waiting; read through the mailbox's shared
/// feed. `None` when the store pruned its feed past the watermark: those
/// events are lost.
async fn pending(
    store: &Arc<dyn crate::store::Backend>,
    feed: &Feed,
    sub: &Subscription,
) -> Option<(Vec<Event>, i64, bool)> {
    let read = feed::read(
        feed,
        store,
        &sub.mailbox,
        sub.watermark,
        EVENT_BATCH,
        |changes, folders| {
            let folder_item = |id: i64| {
                folders
                    .iter()
                    .find(|f| f.id == id)
                    .map(|f| f.item_id.clone())
            };
            events_for(sub, changes, &folder_item)
        },
    )
    .await;
    (!read.pruned).then_some((read.answer, read.last, read.more))
}

fn write_event(x: &mut Xml, e: &Event, mailbox: &str) {
    let el = format!("t:{}", e.kind);
    x.open(&el, &[]);
    x.leaf("t:Watermark", &watermark(e.seq));
    x.leaf("t:TimeStamp", &xsd_datetime(crate::clock::now_secs()));
    match (&e.item, &e.folder) {
        (Some(item), folder) => {
            x.empty("t:ItemId", &[("Id", &EwsId::Item(item.clone()).encode())]);
            if let Some(f) = folder {
                x.empty(
                    "t:ParentFolderId",
                    &[("Id", &EwsId::Folder(f.clone()).encode())],
                );
            }
        }
        (None, Some(folder)) => {
            x.empty(
                "t:FolderId",
                &[("Id", &EwsId::Folder(folder.clone()).encode())],
            );
            x.empty(
                "t:ParentFolderId",
                &[("Id", &EwsId::Top(mailbox.to_string()).encode())],
            );
        }
        (None, None) => {}
    }
    x.close(&el);
}

/// GetEvents: a pull subscription's events since the watermark (or a StatusEvent).
pub async fn get_events(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut reply = Reply::begin(xml, "GetEvents");
    let id = op.child_text("SubscriptionId").unwrap_or("");
    let mut sub = match ctx.ews.subscriptions.get(id, &ctx.creator()) {
        Ok(s) if !s.streaming => s,
        Ok(_) => {
            reply.fail(ResponseCode::ErrorInvalidSubscription);
            return reply.finish();
        }
        Err(u) => {
            reply.fail(unusable(u));
            return reply.finish();
        }
    };
    if let Some(w) = op.child_text("Watermark").and_then(parse_watermark) {
        sub.watermark = w;
    }
    let previous = sub.watermark;
    let feed = ctx.ews.subscriptions.feed(&sub.mailbox);
    let Some((events, last, more)) = pending(&ctx.ews.store, &feed, &sub).await else {
        // The feed was pruned past the watermark: those events are lost.
        reply.fail(ResponseCode::ErrorInvalidWatermark);
        return reply.finish();
    };
    ctx.ews.subscriptions.advance(id, last);
    let x = reply.ok();
    x.open("m:Notification", &[]);
    x.leaf("t:SubscriptionId", id);
    x.leaf("t:PreviousWatermark", &watermark(previous));
    x.leaf("t:MoreEvents", if more { "true" } else { "false" });
    if events.is_empty() {
        x.open("t:StatusEvent", &[])
            .leaf("t:Watermark", &watermark(last))
            .close("t:StatusEvent");
    }
    for e in &events {
        write_event(x, e, &sub.mailbox);
    }
    x.close("m:Notification");
    reply.end();
    reply.finish();
}

/// Unsubscribe.
pub fn unsubscribe(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut reply = Reply::begin(xml, "Unsubscribe");
    match ctx.ews.subscriptions.remove(
        op.child_text("SubscriptionId").unwrap_or(""),
        &ctx.creator(),
    ) {
        Ok(()) => {
            reply.ok();
            reply.end();
        }
        Err(u) => reply.fail(unusable(u)),
    }
    reply.finish();
}

/// One envelope of a stream: `status` and the notifications of each subscription.
fn stream_envelope(first: bool, status: &str, batches: &[(String, String, Vec<Event>)]) -> Bytes {
    let mut x = if first { Xml::new() } else { Xml::fragment() };
    envelope::open(&mut x);
    let mut reply = Reply::begin(&mut x, "GetStreamingEvents");
    let m = reply.ok();
    if batches.iter().any(|(_, _, e)| !e.is_empty()) {
        m.open("m:Notifications", &[]);
        for (id, mailbox, events) in batches.iter().filter(|b| !b.2.is_empty()) {
            m.open("m:Notification", &[]);
            m.leaf("t:SubscriptionId", id);
            for e in events {
                write_event(m, e, mailbox);
            }
            m.close("m:Notification");
        }
        m.close("m:Notifications");
    }
    m.leaf("m:ConnectionStatus", status);
    reply.end();
    reply.finish();
    envelope::close(&mut x);
    Bytes::from(x.finish())
}

/// GetStreamingEvents: holds the connection for ConnectionTimeout minutes (1-30),
/// sending events as the change feed moves.
pub async fn get_streaming_events(ctx: Context<'_>, op: &Element) -> Answer {
    let creator = ctx.creator();
    let ids: Vec<String> = op
        .child("SubscriptionIds")
        .map(|s| {
            s.children
                .iter()
                .map(|c| c.text.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut subs = Vec::new();
    let mut bad = Vec::new();
    for id in &ids {
        match ctx.ews.subscriptions.get(id, &creator) {
            Ok(s) if s.streaming => subs.push(s),
            _ => bad.push(id.as_str()),
        }
    }
    // As Exchange: one error naming every unusable id (ErrorSubscriptionIds),
    // and nothing streamed for the good ones.
    if !bad.is_empty() || subs.is_empty() {
        return invalid_subscriptions(&bad);
    }
    let minutes: u64 = op
        .child_text("ConnectionTimeout")
        .and_then(|t| t.parse().ok())
        .unwrap_or(30)
        .clamp(1, 30);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(minutes * 60);
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let ews = ctx.ews.clone();
    let wake = Arc::new(Notify::new());
    let mailboxes: HashSet<String> = subs.iter().map(|s| s.mailbox.clone()).collect();
    let watchers: Vec<_> = mailboxes
        .iter()
        .map(|m| {
            let mut rx = ews.store.watch(m);
            let wake = wake.clone();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    wake.notify_one();
                }
            })
        })
        .collect();
    let feeds: Vec<Feed> = subs
        .iter()
        .map(|s| ews.subscriptions.feed(&s.mailbox))
        .collect();
    let (ip, who, user_agent) = (ctx.ip, ctx.who, ctx.user_agent);
    tokio::spawn(async move {
        let ews_task = ews;
        let mut check = Context {
            ews: &ews_task,
            who,
            ip,
            user_agent,
        };
        let mut first = true;
        let mut woken = true;
        let mut last_sent = Instant::now();
        loop {
            if woken {
                woken = false;
                let mut batches = Vec::new();
                let mut more = false;
                let mut lost = false;
                for (sub, feed) in subs.iter_mut().zip(&feeds) {
                    let Some((events, last, more_here)) = pending(&ews_task.store, feed, sub).await
                    else {
                        // Its events were pruned: the subscription cannot go
                        // on. It is dropped, so the client subscribes afresh.
                        let _ = ews_task.subscriptions.remove(&sub.id, &sub.creator);
                        lost = true;
                        continue;
                    };
                    sub.watermark = last;
                    ews_task.subscriptions.advance(&sub.id, last);
                    more |= more_here;
                    batches.push((sub.id.clone(), sub.mailbox.clone(), events));
                }
                if lost {
                    let _ = tx.send(stream_envelope(first, "Closed", &batches)).await;
                    break;
                }
                if batches.iter().any(|b| !b.2.is_empty()) || first {
                    if tx
                        .send(stream_envelope(first, "OK", &batches))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    first = false;
                    last_sent = Instant::now();
                }
                if more {
                    woken = true;
                    continue;
                }
            }
            tokio::select! {
                _ = wake.notified() => woken = true,
                _ = tokio::time::sleep(RECHECK) => {
                    if !check.still_allowed() {
                        let _ = tx.send(stream_envelope(false, "Closed", &[])).await;
                        break;
                    }
                    if last_sent.elapsed() >= HEARTBEAT {
                        if tx.send(stream_envelope(false, "OK", &[])).await.is_err() {
                            break;
                        }
                        last_sent = Instant::now();
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = tx.send(stream_envelope(false, "Closed", &[])).await;
                    break;
                }
                _ = tx.closed() => break,
            }
        }
        for w in watchers {
            w.abort();
        }
    });
    Answer::Stream(rx)
}

/// GetStreamingEvents refused: ErrorInvalidSubscription naming the ids.
fn invalid_subscriptions(ids: &[&str]) -> Answer {
    let mut x = Xml::new();
    envelope::open(&mut x);
    let mut reply = Reply::begin(&mut x, "GetStreamingEvents");
    let m = reply.error_open(
        ResponseCode::ErrorInvalidSubscription,
        "Subscription is invalid.",
    );
    if !ids.is_empty() {
        m.open("m:ErrorSubscriptionIds", &[]);
        for id in ids {
            m.leaf("m:SubscriptionId", id);
        }
        m.close("m:ErrorSubscriptionIds");
    }
    reply.end();
    reply.finish();
    envelope::close(&mut x);
    Answer::Document(x.finish())
}
