//! SyncFolderItems: a folder's items as a client first sees them (every item a
//! Create, paged by UID), then what changed since, read from the mailbox's change
//! feed — the feed IMAP IDLE reads too, so a message delivered over SMTP or
//! flagged over IMAP shows up here as it does there.
//!
//! The sync state lives with the client and survives restarts: the folder, the
//! feed position the sync continues from, and during the first pass the UID it
//! reached and the UIDNEXT it stops below (later arrivals come from the feed).
//! A state whose position is older than what the store kept of the feed
//! (`store::housekeeping`) is ErrorInvalidSyncStateData: the client starts a
//! new sync with no state.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Reply;
use super::folder::{Trees, open_folder};
use super::item::{load, load_runs, write_loaded};
use super::shape::Shape;
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::ids::EwsId;
use crate::ews::xml::{Element, Xml};
use crate::store::{ChangeKind, MessageMeta, StoreError};

/// The most changes one response carries (what Exchange allows).
const MAX_CHANGES: usize = 512;
/// Feed entries read per store call while collecting changes.
const FEED_BATCH: usize = 1000;

/// Where a folder's sync stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// The store folder's item id.
    pub folder: String,
    /// Feed position: changes after it are still to be reported.
    pub seq: i64,
    /// During the first pass: UIDs up to this one were sent.
    pub uid_done: u32,
    /// During the first pass: it covers UIDs below this one; 0 once it is over.
    pub uid_limit: u32,
}

impl SyncState {
    pub fn encode(&self) -> String {
        STANDARD.encode(format!(
            "I1 {} {} {} {}",
            self.folder, self.seq, self.uid_done, self.uid_limit
        ))
    }

    pub fn decode(text: &str) -> Option<SyncState> {
        let raw = String::from_utf8(STANDARD.decode(text.trim()).ok()?).ok()?;
        let mut p = raw.split(' ');
        (p.next()? == "I1").then_some(())?;
        let state = SyncState {
            folder: p.next()?.to_string(),
            seq: p.next()?.parse().ok()?,
            uid_done: p.next()?.parse().ok()?,
            uid_limit: p.next()?.parse().ok()?,
        };
        p.next().is_none().then_some(state)
    }
}

/// One change to report.
enum Reported {
    Create(MessageMeta),
    Update(MessageMeta),
    /// Only its read state changed.
    ReadFlag(MessageMeta),
    Delete(String),
}

pub async fn sync_folder_items(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let shape = Shape::parse(op.child("ItemShape"));
    let max = op
        .child_text("MaxChangesReturned")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(MAX_CHANGES)
        .clamp(1, MAX_CHANGES);
    let ignore: HashSet<String> = op
        .child("Ignore")
        .map(|i| {
            i.children
                .iter()
                .filter_map(|c| c.attr("Id").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut trees = Trees::default();
    let mut reply = Reply::begin(xml, "SyncFolderItems");
    let folder = match op.child("SyncFolderId") {
        Some(el) => open_folder(ctx, &mut trees, el, MailboxAction::ReadSummary).await,
        None => Err(ResponseCode::ErrorFolderNotFound),
    };
    let (owner, view) = match folder {
        Ok(found) => found,
        Err(code) => {
            reply.fail(code);
            return reply.finish();
        }
    };
    let Some(folder) = view.store.clone() else {
        // root and msgfolderroot hold no items: nothing ever changes there.
        let x = reply.ok();
        x.leaf("m:SyncState", op.child_text("SyncState").unwrap_or(""));
        x.leaf("m:IncludesLastItemInRange", "true");
        x.empty("m:Changes", &[]);
        reply.end();
        return reply.finish();
    };
    let store = &ctx.ews.store;
    let state = match op.child_text("SyncState").filter(|s| !s.is_empty()) {
        None => SyncState {
            folder: folder.item_id.clone(),
            seq: store.latest_change(&owner).await.unwrap_or(0),
            uid_done: 0,
            uid_limit: folder.uidnext,
        },
        Some(text) => match SyncState::decode(text).filter(|s| s.folder == folder.item_id) {
            Some(s) => s,
            None => {
                reply.fail(ResponseCode::ErrorInvalidSyncStateData);
                return reply.finish();
            }
        },
    };
    let (changes, next, done) = match collect(ctx, &owner, folder.id, state, max).await {
        Ok(found) => found,
        Err(code) => {
            reply.fail(code);
            return reply.finish();
        }
    };
    // The changes are written aside first: a store read failing half way answers
    // an error, so the client asks again from its old state and loses nothing.
    let mut body = Xml::fragment();
    let x = &mut body;
    let folder_id = EwsId::Folder(folder.item_id.clone());
    let changes: Vec<Reported> = changes
        .into_iter()
        .filter(|c| match c {
            Reported::Create(m) | Reported::Update(m) | Reported::ReadFlag(m) => {
                !ignore.contains(&EwsId::Item(m.item_id.clone()).encode())
            }
            Reported::Delete(_) => true,
        })
        .collect();
    fn written(c: &Reported) -> Option<&MessageMeta> {
        match c {
            Reported::Create(m) | Reported::Update(m) => Some(m),
            Reported::ReadFlag(_) | Reported::Delete(_) => None,
        }
    }
    for run in load_runs(&changes, &shape, |c| written(c).map_or(0, |m| m.size)) {
        let metas: Vec<&MessageMeta> = run.iter().filter_map(written).collect();
        let loaded = match load(ctx, &metas, &shape).await {
            Ok(loaded) => loaded,
            Err(code) => {
                reply.fail(code);
                return reply.finish();
            }
        };
        for change in run {
            match change {
                Reported::Create(meta) => {
                    x.open("t:Create", &[]);
                    let _ = write_loaded(x, &loaded, meta, &folder_id, &shape, true);
                    x.close("t:Create");
                }
                Reported::Update(meta) => {
                    x.open("t:Update", &[]);
                    let _ = write_loaded(x, &loaded, meta, &folder_id, &shape, true);
                    x.close("t:Update");
                }
                Reported::ReadFlag(meta) => {
                    let read = meta.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"));
                    x.open("t:ReadFlagChange", &[]);
                    x.empty(
                        "t:ItemId",
                        &[("Id", &EwsId::Item(meta.item_id.clone()).encode())],
                    );
                    x.leaf("t:IsRead", if read { "true" } else { "false" });
                    x.close("t:ReadFlagChange");
                }
                Reported::Delete(item) => {
                    x.open("t:Delete", &[]);
                    x.empty("t:ItemId", &[("Id", &EwsId::Item(item.clone()).encode())]);
                    x.close("t:Delete");
                }
            }
        }
    }
    let x = reply.ok();
    x.leaf("m:SyncState", &next.encode());
    x.leaf(
        "m:IncludesLastItemInRange",
        if done { "true" } else { "false" },
    );
    x.open("m:Changes", &[]);
    x.raw(&String::from_utf8_lossy(&body.finish()));
    x.close("m:Changes");
    reply.end();
    reply.finish();
}

/// Up to `max` changes after `state`, the state after them, and whether the
/// client is now up to date.
async fn collect(
    ctx: &Context<'_>,
    owner: &str,
    folder_id: i64,
    mut state: SyncState,
    max: usize,
) -> Result<(Vec<Reported>, SyncState, bool), ResponseCode> {
    let store = &ctx.ews.store;
    let mut out = Vec::new();
    if state.uid_limit > 0 {
        let first = state.uid_done.saturating_add(1);
        let last = state.uid_limit.saturating_sub(1);
        let metas = if first <= last {
            store
                .messages(folder_id, first, last)
                .await
                .map_err(|_| ResponseCode::ErrorFolderNotFound)?
        } else {
            Vec::new()
        };
        let more = metas.len() > max;
        for meta in metas.into_iter().take(max) {
            state.uid_done = meta.uid;
            out.push(Reported::Create(meta));
        }
        if more {
            return Ok((out, state, false));
        }
        state.uid_done = 0;
        state.uid_limit = 0;
    }
    loop {
        let feed = store
            .changes_since(owner, state.seq, FEED_BATCH)
            .await
            .map_err(|e| match e {
                // The feed was pruned past this state: as Exchange answers a
                // state it no longer honours, so the client syncs afresh.
                StoreError::FeedPruned => ResponseCode::ErrorInvalidSyncStateData,
                e => super::write::store_error(e),
            })?;
        let exhausted = feed.len() < FEED_BATCH;
        for change in feed {
            if out.len() >= max {
                return Ok((out, state, false));
            }
            state.seq = change.seq;
            if change.folder_id != folder_id {
                continue;
            }
            match change.kind {
                ChangeKind::Created | ChangeKind::Flags | ChangeKind::ReadFlag => {
                    let now = store
                        .messages(folder_id, change.uid, change.uid)
                        .await
                        .unwrap_or_default();
                    // Gone since: its Delete follows in the feed.
                    let Some(meta) = now.into_iter().next() else {
                        continue;
                    };
                    let already = out.iter().position(|r| matches!(r, Reported::Create(m) | Reported::Update(m) | Reported::ReadFlag(m) if m.uid == meta.uid));
                    match (already, change.kind) {
                        // A read change after another change of the same item is
                        // still that change; another change makes it an Update.
                        (Some(i), ChangeKind::Flags) if matches!(out[i], Reported::ReadFlag(_)) => {
                            out[i] = Reported::Update(meta);
                            continue;
                        }
                        (Some(_), _) => continue,
                        (None, _) => {}
                    }
                    // A draft rewritten under its id was just reported deleted:
                    // to the client it changed.
                    let rewritten = out
                        .iter()
                        .position(|r| matches!(r, Reported::Delete(id) if *id == meta.item_id));
                    if let Some(i) = rewritten {
                        out.remove(i);
                        out.push(Reported::Update(meta));
                    } else if change.kind == ChangeKind::Created {
                        out.push(Reported::Create(meta));
                    } else if change.kind == ChangeKind::ReadFlag {
                        out.push(Reported::ReadFlag(meta));
                    } else {
                        out.push(Reported::Update(meta));
                    }
                }
                ChangeKind::Expunged if !change.item_id.is_empty() => {
                    out.retain(|r| !matches!(r, Reported::Create(m) | Reported::Update(m) | Reported::ReadFlag(m) if m.item_id == change.item_id));
                    out.push(Reported::Delete(change.item_id));
                }
                _ => {}
            }
        }
        if exhausted {
            return Ok((out, state, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_refuses_garbage() {
        let s = SyncState {
            folder: "0190ab".into(),
            seq: 42,
            uid_done: 7,
            uid_limit: 9,
        };
        assert_eq!(SyncState::decode(&s.encode()), Some(s));
        for bad in [
            "",
            "!!",
            &STANDARD.encode("I1 a b c d"),
            &STANDARD.encode("I1 a 1 2 3 4"),
            &STANDARD.encode("H1 a 1 2 3"),
        ] {
            assert_eq!(SyncState::decode(bad), None, "{bad}");
        }
    }
}
