//! SELECT and EXAMINE, with CONDSTORE and QRESYNC parameters (RFC 7162).

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::mailbox::Mailbox;

use crate::events::audit::{MailboxAction, ObjectType};
use crate::imap::mailbox_view::View;
use crate::imap::response::runs_set;
use crate::imap::session::{Done, Imap, store_failure};

/// Opens a folder read-write (SELECT) or read-only (EXAMINE).
pub async fn select(
    imap: &mut Imap,
    mailbox: &Mailbox<'_>,
    params: &[SelectParameter],
    read_only: bool,
) -> Done {
    imap.deselect();
    let folder = match imap.folder(mailbox).await {
        Ok(f) => f,
        Err(done) => return done,
    };
    let mut qresync = None;
    for p in params {
        match p {
            SelectParameter::CondStore => imap.condstore = true,
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                ..
            } => {
                if !imap.qresync {
                    return Done::bad("QRESYNC must be enabled first");
                }
                qresync = Some((
                    uid_validity.get(),
                    mod_sequence_value.get(),
                    known_uids.clone(),
                ));
            }
        }
    }
    let view = match View::open(&imap.ctx.store, folder.clone(), read_only, &imap.ctx.recent).await
    {
        Ok(v) => v,
        Err(e) => return store_failure(e),
    };
    for line in view.flags_responses() {
        imap.untagged(&line);
    }
    let line = format!("{} EXISTS", view.len());
    imap.untagged(&line);
    // RECENT and UNSEEN are IMAP4rev1's (RFC 3501 6.3.1); rev2 dropped both.
    if !imap.rev2 {
        let line = format!("{} RECENT", view.recent_count());
        imap.untagged(&line);
        if let Some(seq) = view.first_unseen {
            let line = format!("OK [UNSEEN {seq}] First unseen");
            imap.untagged(&line);
        }
    }
    let lines = [
        format!("OK [UIDVALIDITY {}] UIDs valid", folder.uidvalidity),
        format!("OK [UIDNEXT {}] Predicted next UID", folder.uidnext),
        format!("OK [HIGHESTMODSEQ {}] Highest", view.highest_modseq()),
    ];
    for line in &lines {
        imap.untagged(line);
    }
    if imap.rev2 {
        let line = format!("LIST () \"/\" {}", imap.wire_name(&folder.name));
        imap.untagged(&line);
    }
    if let Some((uidvalidity, modseq, known)) = qresync
        && uidvalidity == folder.uidvalidity
    {
        qresync_replay(imap, &view, modseq, known.as_ref()).await;
    }
    imap.audit(MailboxAction::Read, ObjectType::Folder, &folder, None);
    imap.selected = Some(view);
    if read_only {
        Done::ok("[READ-ONLY] EXAMINE completed")
    } else {
        Done::ok("[READ-WRITE] SELECT completed")
    }
}

/// QRESYNC: VANISHED (EARLIER) for UIDs expunged after the client's MODSEQ (from
/// the store's change feed), then FETCH for messages changed after it.
async fn qresync_replay(
    imap: &mut Imap,
    view: &View,
    modseq: u64,
    known: Option<&imap_codec::imap_types::sequence::SequenceSet>,
) {
    let uids = view.uids();
    let vanished = view.vanished_since(&imap.ctx.store, modseq, known).await;
    if !vanished.is_empty() {
        let line = format!("VANISHED (EARLIER) {}", runs_set(&vanished));
        imap.untagged(&line);
    }
    // The view keeps no flags: read the changed messages' current ones.
    let changed = imap
        .ctx
        .store
        .messages(view.folder.id, 1, u32::MAX)
        .await
        .unwrap_or_default();
    for m in changed.into_iter().filter(|m| m.modseq > modseq) {
        if let Ok(i) = uids.binary_search(&m.uid) {
            let line = format!(
                "{} FETCH (UID {} FLAGS ({}) MODSEQ ({}))",
                i + 1,
                m.uid,
                imap.flag_list(view, m.uid, &m.flags),
                m.modseq
            );
            imap.untagged(&line);
        }
    }
}
