//! STORE, EXPUNGE / UID EXPUNGE, CLOSE, COPY and MOVE on the selected folder.

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;

use super::append::flag_strings;
use crate::events::audit::{MailboxAction, ObjectType};
use crate::imap::response::{compact_set, ordered_set};
use crate::imap::sequence;
use crate::imap::session::{Done, Imap, store_failure};
use crate::store::{FlagOp, Refused};

/// The view indexes a command's set names, or the BAD answer for a bad sequence set.
pub fn resolve(imap: &Imap, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, Done> {
    let Some(view) = &imap.selected else {
        return Err(Done::bad("No mailbox selected"));
    };
    let uids = view.uids();
    if uid {
        Ok(sequence::by_uid(set, &uids))
    } else {
        sequence::by_seq(set, &uids).map_err(|_| Done::bad("Invalid message sequence number"))
    }
}

/// STORE / UID STORE, with UNCHANGEDSINCE (CONDSTORE).
pub async fn store(
    imap: &mut Imap,
    set: &SequenceSet,
    kind: StoreType,
    response: StoreResponse,
    flags: &[Flag<'_>],
    uid: bool,
    modifiers: &[StoreModifier],
) -> Done {
    let idx = match resolve(imap, set, uid) {
        Ok(i) => i,
        Err(done) => return done,
    };
    let view = imap.selected.as_ref().expect("selected");
    if view.read_only {
        return Done::no("[READ-ONLY] Mailbox is read-only");
    }
    let folder = view.folder.clone();
    let uids: Vec<u32> = idx.iter().map(|&i| view.uid_at(i)).collect();
    let unchanged_since = modifiers
        .iter()
        .map(|m| match m {
            StoreModifier::UnchangedSince(n) => *n,
        })
        .next();
    if unchanged_since.is_some() {
        imap.enable_condstore();
    }
    let op = match kind {
        StoreType::Add => FlagOp::Add,
        StoreType::Remove => FlagOp::Remove,
        StoreType::Replace => FlagOp::Replace,
    };
    if uids.is_empty() {
        return Done::ok("STORE completed");
    }
    let outcome = match imap
        .ctx
        .store
        .store_flags(folder.id, uids, op, flag_strings(flags), unchanged_since)
        .await
    {
        Ok(o) => o,
        Err(e) => return store_failure(e),
    };
    let silent = response == StoreResponse::Silent;
    imap.announce_keywords(outcome.updated.iter().flat_map(|u| &u.flags));
    for u in &outcome.updated {
        if let Some(view) = &mut imap.selected {
            view.note_flags(u.uid, u.modseq);
        }
        // .SILENT drops FLAGS, but a CONDSTORE client still learns the new MODSEQ.
        if silent && !imap.condstore {
            continue;
        }
        let seq = imap
            .selected
            .as_ref()
            .and_then(|v| v.index_of(u.uid))
            .map(|p| p + 1)
            .unwrap_or(0);
        let mut items = Vec::new();
        if uid {
            items.push(format!("UID {}", u.uid));
        }
        if !silent && let Some(view) = &imap.selected {
            items.push(format!("FLAGS ({})", imap.flag_list(view, u.uid, &u.flags)));
        }
        if imap.condstore {
            items.push(format!("MODSEQ ({})", u.modseq));
        }
        let line = format!("{seq} FETCH ({})", items.join(" "));
        imap.untagged(&line);
    }
    imap.audit(
        MailboxAction::UpdateReadState,
        ObjectType::Message,
        &folder,
        None,
    );
    if outcome.modified.is_empty() {
        return Done::ok("STORE completed");
    }
    let modified: Vec<u32> = if uid {
        outcome.modified.clone()
    } else {
        let view = imap.selected.as_ref().expect("selected");
        outcome
            .modified
            .iter()
            .filter_map(|&u| view.index_of(u))
            .map(|p| p as u32 + 1)
            .collect()
    };
    Done::ok(format!(
        "[MODIFIED {}] Conditional STORE failed for some messages",
        compact_set(&modified)
    ))
}

/// Expunges \Deleted messages (all, or those in `uid_set`) and reports them.
async fn expunge_deleted(
    imap: &mut Imap,
    uid_set: Option<&SequenceSet>,
    report: bool,
) -> Result<(), Done> {
    let view = imap.selected.as_ref().expect("selected");
    if view.read_only {
        return Err(Done::no("[READ-ONLY] Mailbox is read-only"));
    }
    let folder = view.folder.clone();
    let star = view.last_uid();
    let metas = imap
        .ctx
        .store
        .messages(folder.id, 1, u32::MAX)
        .await
        .map_err(store_failure)?;
    let uids: Vec<u32> = metas
        .iter()
        .filter(|m| m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted")))
        .filter(|m| uid_set.is_none_or(|s| sequence::contains(s, m.uid, star)))
        .map(|m| m.uid)
        .collect();
    if uids.is_empty() {
        return Ok(());
    }
    let mut removed = imap
        .ctx
        .store
        .expunge(folder.id, uids)
        .await
        .map_err(store_failure)?;
    removed.sort_unstable();
    imap.audit(MailboxAction::Delete, ObjectType::Message, &folder, None);
    let seqs = imap
        .selected
        .as_mut()
        .map(|v| v.remove(&removed))
        .unwrap_or_default();
    if report {
        if imap.qresync {
            let line = format!("VANISHED {}", compact_set(&removed));
            imap.untagged(&line);
        } else {
            for s in seqs {
                let line = format!("{s} EXPUNGE");
                imap.untagged(&line);
            }
        }
    }
    Ok(())
}

/// EXPUNGE and UID EXPUNGE (UIDPLUS).
pub async fn expunge(imap: &mut Imap, uid_set: Option<&SequenceSet>) -> Done {
    match expunge_deleted(imap, uid_set, true).await {
        Ok(()) => Done::ok("EXPUNGE completed"),
        Err(done) => done,
    }
}

/// CLOSE: silently expunges (read-write only), then deselects without `[CLOSED]`.
pub async fn close(imap: &mut Imap) -> Done {
    if imap.selected.as_ref().is_some_and(|v| !v.read_only)
        && let Err(done) = expunge_deleted(imap, None, false).await
    {
        return done;
    }
    imap.selected = None;
    Done::ok("CLOSE completed")
}

/// COPY / MOVE and their UID forms, answering COPYUID (UIDPLUS).
pub async fn copy(
    imap: &mut Imap,
    set: &SequenceSet,
    mailbox: &Mailbox<'_>,
    uid: bool,
    is_move: bool,
) -> Done {
    let idx = match resolve(imap, set, uid) {
        Ok(i) => i,
        Err(done) => return done,
    };
    let view = imap.selected.as_ref().expect("selected");
    if is_move && view.read_only {
        return Done::no("[READ-ONLY] Mailbox is read-only");
    }
    let source = view.folder.clone();
    let uids: Vec<u32> = idx.iter().map(|&i| view.uid_at(i)).collect();
    let target = match imap.folder(mailbox).await {
        Ok(f) => f,
        Err(_) => return Done::no("[TRYCREATE] No such mailbox"),
    };
    let verb = if is_move { "MOVE" } else { "COPY" };
    if uids.is_empty() {
        return Done::ok(format!("{verb} completed"));
    }
    let outcome = match imap
        .ctx
        .store
        .copy_messages(source.id, uids, target.id, is_move)
        .await
    {
        Ok(Ok(o)) => o,
        Ok(Err(Refused::OverQuota)) => return Done::no("[OVERQUOTA] Mailbox is over quota"),
        Ok(Err(Refused::NoSuchFolder)) => return Done::no("[TRYCREATE] No such mailbox"),
        Err(e) => return store_failure(e),
    };
    let (action, to_action) = if is_move {
        (MailboxAction::Move, MailboxAction::MoveTo)
    } else {
        (MailboxAction::Copy, MailboxAction::CopyTo)
    };
    imap.audit(action, ObjectType::Message, &source, None);
    imap.audit(to_action, ObjectType::Message, &target, None);
    let src: Vec<u32> = outcome.pairs.iter().map(|p| p.0).collect();
    let dst: Vec<u32> = outcome.pairs.iter().map(|p| p.1).collect();
    let copyuid = if src.is_empty() {
        String::new()
    } else {
        format!(
            "[COPYUID {} {} {}] ",
            outcome.uidvalidity,
            ordered_set(&src),
            ordered_set(&dst)
        )
    };
    if !is_move {
        return Done::ok(format!("{copyuid}COPY completed"));
    }
    let line = format!("OK {copyuid}Moved");
    imap.untagged(line.trim_end());
    let mut moved = src;
    moved.sort_unstable();
    let seqs = imap
        .selected
        .as_mut()
        .map(|v| v.remove(&moved))
        .unwrap_or_default();
    if imap.qresync {
        let line = format!("VANISHED {}", compact_set(&moved));
        imap.untagged(&line);
    } else {
        for s in seqs {
            let line = format!("{s} EXPUNGE");
            imap.untagged(&line);
        }
    }
    Done::ok("MOVE completed")
}
