//! FETCH / UID FETCH, with CHANGEDSINCE and VANISHED (RFC 7162), the implicit
//! \Seen of non-PEEK body fetches, and ENVELOPE/BODYSTRUCTURE from the body cache.

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::sequence::SequenceSet;

use super::messages::resolve;
use crate::events::audit::{MailboxAction, ObjectType};
use crate::imap::compress::Conn;
use crate::imap::content::Structure;
use crate::imap::fetch::{self, FetchError, Message};
use crate::imap::response::runs_set;
use crate::imap::session::{Done, Imap, store_failure};
use crate::store::{CacheConsumer, FlagOp, Store};

/// Queued response bytes above which FETCH writes to the client mid-command.
const FLUSH_AT: usize = 256 * 1024;

/// ENVELOPE and BODYSTRUCTURE of a body: from the store's cache, else computed once
/// and cached.
pub async fn structure(store: &dyn Store, body_id: i64, raw: &[u8]) -> Structure {
    if let Ok(Some(bytes)) = store
        .body_cache(body_id, CacheConsumer::ImapStructure)
        .await
        && let Some(s) = Structure::from_cache(&bytes)
    {
        return s;
    }
    let s = Structure::of(raw);
    if let Err(e) = store
        .put_body_cache(body_id, CacheConsumer::ImapStructure, s.to_cache())
        .await
    {
        tracing::debug!(error = %e, "IMAP: caching a body structure failed");
    }
    s
}

/// FETCH or UID FETCH.
pub async fn fetch(
    imap: &mut Imap,
    set: &SequenceSet,
    names: MacroOrMessageDataItemNames<'_>,
    uid: bool,
    modifiers: &[FetchModifier],
    stream: &mut Conn,
) -> Done {
    let idx = match resolve(imap, set, uid) {
        Ok(i) => i,
        Err(done) => return done,
    };
    let mut items = match names {
        MacroOrMessageDataItemNames::Macro(m) => m
            .expand()
            .into_iter()
            .map(IntoStatic::into_static)
            .collect(),
        MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
    };
    let mut changed_since = None;
    let mut vanished = false;
    for m in modifiers {
        match m {
            FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
            FetchModifier::Vanished => vanished = true,
        }
    }
    if vanished && (!uid || !imap.qresync || changed_since.is_none()) {
        return Done::bad("VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE");
    }
    if changed_since.is_some() {
        imap.enable_condstore();
    }
    if uid && !items.contains(&MessageDataItemName::Uid) {
        items.insert(0, MessageDataItemName::Uid);
    }
    if changed_since.is_some() && !items.contains(&MessageDataItemName::ModSeq) {
        items.push(MessageDataItemName::ModSeq);
    }
    if items.contains(&MessageDataItemName::ModSeq) {
        imap.enable_condstore();
    }
    let needs = fetch::needs(&items);
    let view = imap.selected.as_ref().expect("selected");
    let folder = view.folder.clone();
    let read_only = view.read_only;
    let wanted: Vec<(u32, u32)> = idx
        .iter()
        .map(|&i| (i as u32 + 1, view.uid_at(i)))
        .collect();
    if vanished && let Some(since) = changed_since {
        let gone = view.vanished_since(&imap.ctx.store, since, Some(set)).await;
        if !gone.is_empty() {
            let line = format!("VANISHED (EARLIER) {}", runs_set(&gone));
            imap.untagged(&line);
        }
    }
    let Some(&(_, first)) = wanted.first() else {
        return Done::ok("FETCH completed");
    };
    let last = wanted.last().map(|w| w.1).unwrap_or(first);
    let metas = match imap.ctx.store.messages(folder.id, first, last).await {
        Ok(m) => m,
        Err(e) => return store_failure(e),
    };
    if items.contains(&MessageDataItemName::Flags) {
        imap.announce_keywords(metas.iter().flat_map(|m| &m.flags));
    }
    let store = imap.ctx.store.clone();
    let mut read_bodies = false;
    // Expunged by another session between the listing and its body read.
    let mut vanished_meanwhile = false;
    for (seq, uid) in wanted {
        let Ok(pos) = metas.binary_search_by_key(&uid, |m| m.uid) else {
            // Expunged by another session and not yet reported: nothing to send.
            continue;
        };
        let mut meta = metas[pos].clone();
        if changed_since.is_some_and(|since| meta.modseq <= since) {
            continue;
        }
        let mut items_here = items.clone();
        if needs.sets_seen
            && !read_only
            && !meta.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"))
        {
            match store
                .store_flags(
                    folder.id,
                    vec![uid],
                    FlagOp::Add,
                    vec!["\\Seen".into()],
                    None,
                )
                .await
            {
                Ok(outcome) => {
                    if let Some(u) = outcome.updated.into_iter().next() {
                        meta.flags = u.flags.clone();
                        meta.modseq = u.modseq;
                        if let Some(view) = &mut imap.selected {
                            view.note_flags(uid, u.modseq);
                        }
                        if !items_here.contains(&MessageDataItemName::Flags) {
                            items_here.push(MessageDataItemName::Flags);
                        }
                    }
                }
                Err(e) => return store_failure(e),
            }
        }
        let raw = if needs.raw || needs.structure {
            match store.body(meta.body_id).await {
                Ok(b) => Some(b),
                Err(crate::store::StoreError::NotFound(_)) => {
                    vanished_meanwhile = true;
                    continue;
                }
                Err(e) => return store_failure(e),
            }
        } else {
            None
        };
        let structure = match (&raw, needs.structure) {
            (Some(raw), true) => Some(structure(store.as_ref(), meta.body_id, raw).await),
            _ => None,
        };
        if needs.raw {
            read_bodies = true;
        }
        let recent = !imap.rev2 && imap.selected.as_ref().is_some_and(|v| v.is_recent(uid));
        let message = Message {
            meta: &meta,
            raw: raw.as_deref(),
            structure: structure.as_ref(),
            recent,
        };
        let mut line = format!("* {seq} FETCH (").into_bytes();
        match fetch::render(&items_here, &message, &mut line) {
            Ok(()) => {}
            Err(FetchError::UnknownCte) => {
                return Done::no("[UNKNOWN-CTE] Cannot decode this part's transfer encoding");
            }
        }
        line.extend_from_slice(b")\r\n");
        imap.out.extend_from_slice(&line);
        // A FETCH of a whole mailbox streams out instead of piling up in memory.
        if imap.out.len() > FLUSH_AT && imap.flush(stream).await.is_err() {
            return Done {
                status: "BAD",
                text: "Connection lost".into(),
                flow: crate::imap::session::Flow::Close,
            };
        }
    }
    if read_bodies {
        imap.audit(MailboxAction::Read, ObjectType::Message, &folder, None);
    }
    if vanished_meanwhile {
        // RFC 5530: the client learns of the EXPUNGE with its next command.
        return Done::no("[EXPUNGEISSUED] Some of the requested messages no longer exist");
    }
    Done::ok("FETCH completed")
}
