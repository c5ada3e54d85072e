//! The selected folder as this session's client knows it: the UIDs in sequence
//! order with the flags and MODSEQ last reported, so expunges and flag changes made
//! by others are announced only when the protocol allows, and only once.

use std::sync::Arc;

use tokio::sync::watch;

use crate::store::{Folder, Store};

/// One message as the client last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Vec<String>,
}

/// What changed since the client was last told.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Updates {
    /// 1-based sequence numbers at the time of each expunge, in sending order, and UIDs.
    pub expunged: Vec<(u32, u32)>,
    /// The new message count, when messages arrived.
    pub exists: Option<u32>,
    /// (sequence number, message) whose flags changed.
    pub flags: Vec<(u32, Known)>,
}

/// The selected folder.
pub struct View {
    pub folder: Folder,
    pub read_only: bool,
    pub msgs: Vec<Known>,
    /// Ticks on every change in the mailbox (IDLE waits on it).
    pub watch: watch::Receiver<i64>,
}

impl View {
    /// Opens `folder`: reads its messages and subscribes to the mailbox's changes.
    pub async fn open(
        store: &Arc<dyn Store>,
        folder: Folder,
        read_only: bool,
    ) -> crate::store::Result<View> {
        let mut watch = store.watch(&folder.mailbox_id);
        watch.mark_unchanged();
        let msgs = load(store, folder.id).await?;
        Ok(View {
            folder,
            read_only,
            msgs,
            watch,
        })
    }

    /// UIDs in sequence order.
    pub fn uids(&self) -> Vec<u32> {
        self.msgs.iter().map(|m| m.uid).collect()
    }

    /// The largest MODSEQ the client has seen, at least the folder's at SELECT.
    pub fn highest_modseq(&self) -> u64 {
        self.msgs
            .iter()
            .map(|m| m.modseq)
            .max()
            .unwrap_or(0)
            .max(self.folder.highest_modseq)
    }

    /// Reads the folder again and computes what to tell the client. With
    /// `allow_expunge` false, expunged messages stay in the view (RFC 9051 7.5.1).
    pub async fn refresh(
        &mut self,
        store: &Arc<dyn Store>,
        allow_expunge: bool,
    ) -> crate::store::Result<Updates> {
        self.watch.mark_unchanged();
        let now = load(store, self.folder.id).await?;
        let mut updates = Updates::default();
        let mut kept = Vec::with_capacity(self.msgs.len());
        let mut j = 0;
        for old in self.msgs.drain(..) {
            while j < now.len() && now[j].uid < old.uid {
                j += 1;
            }
            match now.get(j) {
                Some(cur) if cur.uid == old.uid => {
                    if cur.flags != old.flags || cur.modseq != old.modseq {
                        if cur.flags != old.flags {
                            updates.flags.push((0, cur.clone()));
                        }
                        kept.push(cur.clone());
                    } else {
                        kept.push(old);
                    }
                }
                _ if allow_expunge => updates.expunged.push((0, old.uid)),
                _ => kept.push(old),
            }
        }
        // Sequence numbers of expunges as the client computes them: each EXPUNGE
        // shifts the following messages down.
        if !updates.expunged.is_empty() {
            let mut remaining: Vec<u32> = self_uids_before(&kept, &updates.expunged);
            for e in updates.expunged.iter_mut() {
                if let Some(pos) = remaining.iter().position(|&u| u == e.1) {
                    e.0 = pos as u32 + 1;
                    remaining.remove(pos);
                }
            }
        }
        let last = kept.last().map(|m| m.uid).unwrap_or(0);
        let before = kept.len();
        kept.extend(now.into_iter().filter(|m| m.uid > last));
        if kept.len() != before {
            updates.exists = Some(kept.len() as u32);
        }
        self.msgs = kept;
        for f in updates.flags.iter_mut() {
            f.0 = self
                .msgs
                .iter()
                .position(|m| m.uid == f.1.uid)
                .map(|p| p as u32 + 1)
                .unwrap_or(0);
        }
        updates.flags.retain(|f| f.0 > 0);
        Ok(updates)
    }

    /// Records flags the session itself just reported (STORE, FETCH setting \Seen).
    pub fn note_flags(&mut self, uid: u32, flags: Vec<String>, modseq: u64) {
        if let Ok(i) = self.msgs.binary_search_by_key(&uid, |m| m.uid) {
            self.msgs[i].flags = flags;
            self.msgs[i].modseq = modseq;
        }
    }

    /// Removes messages the session expunged itself; returns their sequence numbers
    /// in sending order (each computed after the previous removal).
    pub fn remove(&mut self, uids: &[u32]) -> Vec<u32> {
        let mut seqs = Vec::new();
        for uid in uids {
            if let Ok(i) = self.msgs.binary_search_by_key(uid, |m| m.uid) {
                self.msgs.remove(i);
                seqs.push(i as u32 + 1);
            }
        }
        seqs
    }
}

/// All UIDs in order as the client knew them before the expunges: the kept ones
/// merged with the expunged ones.
fn self_uids_before(kept: &[Known], expunged: &[(u32, u32)]) -> Vec<u32> {
    let mut all: Vec<u32> = kept
        .iter()
        .map(|m| m.uid)
        .chain(expunged.iter().map(|e| e.1))
        .collect();
    all.sort_unstable();
    all
}

async fn load(store: &Arc<dyn Store>, folder: i64) -> crate::store::Result<Vec<Known>> {
    Ok(store
        .messages(folder, 1, u32::MAX)
        .await?
        .into_iter()
        .map(|m| Known {
            uid: m.uid,
            modseq: m.modseq,
            flags: m.flags,
        })
        .collect())
}
