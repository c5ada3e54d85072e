//! The selected folder as this session's client knows it: the UIDs in sequence
//! order with the MODSEQ last reported, so expunges and flag changes made by others
//! are announced only when the protocol allows, and only once.
//!
//! Updates come from the store's change feed (from `cursor` on), so an idle
//! session costs 16 bytes per message and a delivery costs each watching session a
//! read of the few changed rows, not of the whole folder. A feed backlog too long
//! to replay falls back to reading the folder once.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;

use crate::store::{ChangeKind, Folder, MessageMeta, Store};

/// Changes replayed per read of the feed; a longer backlog reloads the folder.
const FEED_BATCH: usize = 1000;

/// One message as the client last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub uid: u32,
    pub modseq: u64,
}

/// A message whose flags the client must be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
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
    pub flags: Vec<(u32, Changed)>,
}

/// The selected folder.
pub struct View {
    pub folder: Folder,
    pub read_only: bool,
    pub msgs: Vec<Known>,
    /// Ticks on every change in the mailbox (IDLE waits on it).
    pub watch: watch::Receiver<i64>,
    /// The last change of the feed applied to `msgs`.
    cursor: i64,
    /// Expunged by others, not yet announced (RFC 9051 7.5.1 holds them back).
    pending_expunge: BTreeSet<u32>,
    /// The SEARCHRES result (RFC 5182), UIDs ascending: kept with the view so that
    /// SELECT, EXAMINE, UNSELECT and CLOSE reset it by dropping the view.
    pub saved: Vec<u32>,
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
        // Cursor first: a change racing the read is replayed, and replay is idempotent.
        let cursor = store.latest_change(&folder.mailbox_id).await?;
        let msgs = load(store, folder.id).await?.iter().map(known).collect();
        Ok(View {
            folder,
            read_only,
            msgs,
            watch,
            cursor,
            pending_expunge: BTreeSet::new(),
            saved: Vec::new(),
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

    /// Applies the change feed and computes what to tell the client. With
    /// `allow_expunge` false, expunged messages stay in the view (RFC 9051 7.5.1).
    pub async fn refresh(
        &mut self,
        store: &Arc<dyn Store>,
        allow_expunge: bool,
    ) -> crate::store::Result<Updates> {
        self.watch.mark_unchanged();
        let changes = store
            .changes_since(&self.folder.mailbox_id, self.cursor, FEED_BATCH)
            .await?;
        if changes.len() >= FEED_BATCH {
            return self.reload(store, allow_expunge).await;
        }
        let mut created = Vec::new();
        let mut touched = BTreeSet::new();
        for c in changes {
            self.cursor = c.seq;
            if c.folder_id != self.folder.id {
                continue;
            }
            match c.kind {
                ChangeKind::Created => created.push(Known {
                    uid: c.uid,
                    modseq: c.modseq,
                }),
                ChangeKind::Flags => {
                    touched.insert(c.uid);
                }
                ChangeKind::Expunged => {
                    // Created and expunged within this batch: the client never sees it.
                    let before = created.len();
                    created.retain(|m| m.uid != c.uid);
                    if created.len() == before {
                        self.pending_expunge.insert(c.uid);
                    }
                }
                _ => {}
            }
        }
        let mut updates = Updates::default();
        if allow_expunge && !self.pending_expunge.is_empty() {
            let gone = std::mem::take(&mut self.pending_expunge);
            for uid in gone {
                if let Ok(i) = self.msgs.binary_search_by_key(&uid, |m| m.uid) {
                    self.msgs.remove(i);
                    updates.expunged.push((i as u32 + 1, uid));
                }
            }
        }
        let last = self.msgs.last().map_or(0, |m| m.uid);
        created.retain(|m| m.uid > last);
        created.sort_by_key(|m| m.uid);
        created.dedup_by_key(|m| m.uid);
        if !created.is_empty() {
            self.msgs.extend(created);
            updates.exists = Some(self.msgs.len() as u32);
        }
        if let (Some(&first), Some(&last)) = (touched.first(), touched.last()) {
            for m in store.messages(self.folder.id, first, last).await? {
                if touched.contains(&m.uid) {
                    self.report_flags(m, &mut updates);
                }
            }
        }
        Ok(updates)
    }

    /// Records a message's current flags for the client if it has not seen them.
    fn report_flags(&mut self, m: MessageMeta, updates: &mut Updates) {
        if let Ok(i) = self.msgs.binary_search_by_key(&m.uid, |k| k.uid)
            && m.modseq > self.msgs[i].modseq
        {
            self.msgs[i].modseq = m.modseq;
            updates.flags.push((
                i as u32 + 1,
                Changed {
                    uid: m.uid,
                    modseq: m.modseq,
                    flags: m.flags,
                },
            ));
        }
    }

    /// Reads the whole folder again (after a backlog the feed can't replay cheaply).
    async fn reload(
        &mut self,
        store: &Arc<dyn Store>,
        allow_expunge: bool,
    ) -> crate::store::Result<Updates> {
        self.cursor = store.latest_change(&self.folder.mailbox_id).await?;
        let now = load(store, self.folder.id).await?;
        let mut updates = Updates::default();
        // Announce (or hold back) what vanished, in the client's numbering.
        let present: BTreeSet<u32> = now.iter().map(|m| m.uid).collect();
        let gone: Vec<u32> = self
            .msgs
            .iter()
            .map(|m| m.uid)
            .filter(|u| !present.contains(u))
            .collect();
        self.pending_expunge.extend(gone);
        if allow_expunge {
            for uid in std::mem::take(&mut self.pending_expunge) {
                if let Ok(i) = self.msgs.binary_search_by_key(&uid, |m| m.uid) {
                    self.msgs.remove(i);
                    updates.expunged.push((i as u32 + 1, uid));
                }
            }
        }
        let last = self.msgs.last().map_or(0, |m| m.uid);
        let before = self.msgs.len();
        for m in now {
            if m.uid > last {
                self.msgs.push(known(&m));
            } else {
                self.report_flags(m, &mut updates);
            }
        }
        if self.msgs.len() != before {
            updates.exists = Some(self.msgs.len() as u32);
        }
        Ok(updates)
    }

    /// Records a MODSEQ the session itself just reported (STORE, FETCH setting
    /// \Seen), so the feed's echo of that change is not announced again.
    pub fn note_flags(&mut self, uid: u32, modseq: u64) {
        if let Ok(i) = self.msgs.binary_search_by_key(&uid, |m| m.uid) {
            self.msgs[i].modseq = self.msgs[i].modseq.max(modseq);
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

fn known(m: &MessageMeta) -> Known {
    Known {
        uid: m.uid,
        modseq: m.modseq,
    }
}

async fn load(store: &Arc<dyn Store>, folder: i64) -> crate::store::Result<Vec<MessageMeta>> {
    store.messages(folder, 1, u32::MAX).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{FlagOp, FolderKind, FolderRef, Target};

    async fn fixture() -> (tempfile::TempDir, Arc<dyn Store>, Folder) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(Arc::new(
            SqliteStore::open(&dir.path().join("s.sqlite")).unwrap(),
        ));
        store.create_mailbox("m", 1 << 30).await.unwrap();
        let inbox = store
            .folders("m")
            .await
            .unwrap()
            .into_iter()
            .find(|f| f.kind == Some(FolderKind::Inbox))
            .unwrap();
        (dir, store, inbox)
    }

    async fn deliver(store: &Arc<dyn Store>) -> u32 {
        let target = Target {
            folder: FolderRef::Kind("m".into(), FolderKind::Inbox),
            flags: vec![],
        };
        let body: Arc<[u8]> = Arc::from(&b"Subject: x\r\n\r\nbody\r\n"[..]);
        store.deliver(body, 0, vec![target]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .uid
    }

    #[tokio::test]
    async fn the_feed_brings_arrivals_flags_and_held_back_expunges() {
        let (_dir, store, inbox) = fixture().await;
        let a = deliver(&store).await;
        let b = deliver(&store).await;
        let mut view = View::open(&store, inbox.clone(), false).await.unwrap();
        assert_eq!(view.uids(), vec![a, b]);
        // Another session: flags on a, expunges b, delivers c, delivers and expunges d.
        store
            .store_flags(inbox.id, vec![a], FlagOp::Add, vec!["\\Seen".into()], None)
            .await
            .unwrap();
        store.expunge(inbox.id, vec![b]).await.unwrap();
        let c = deliver(&store).await;
        let d = deliver(&store).await;
        store.expunge(inbox.id, vec![d]).await.unwrap();
        // Expunges not allowed now (e.g. after FETCH): b stays, c arrives, d never shows.
        let u = view.refresh(&store, false).await.unwrap();
        assert!(u.expunged.is_empty());
        assert_eq!(u.exists, Some(3));
        assert_eq!(view.uids(), vec![a, b, c]);
        assert_eq!(u.flags.len(), 1);
        assert_eq!((u.flags[0].0, u.flags[0].1.uid), (1, a));
        assert_eq!(u.flags[0].1.flags, vec!["\\Seen".to_string()]);
        // Allowed now: b goes, announced at its sequence number 2.
        let u = view.refresh(&store, true).await.unwrap();
        assert_eq!(u.expunged, vec![(2, b)]);
        assert_eq!(u.exists, None);
        assert!(u.flags.is_empty(), "a's flags were told once");
        assert_eq!(view.uids(), vec![a, c]);
        // Nothing new: nothing to say.
        assert_eq!(
            view.refresh(&store, true).await.unwrap(),
            Updates::default()
        );
    }

    #[tokio::test]
    async fn a_backlog_longer_than_a_batch_reloads_the_folder() {
        let (_dir, store, inbox) = fixture().await;
        let mut view = View::open(&store, inbox, false).await.unwrap();
        for _ in 0..FEED_BATCH + 5 {
            deliver(&store).await;
        }
        let u = view.refresh(&store, true).await.unwrap();
        assert_eq!(u.exists, Some(FEED_BATCH as u32 + 5));
        assert_eq!(view.msgs.len(), FEED_BATCH + 5);
        assert_eq!(
            view.refresh(&store, true).await.unwrap(),
            Updates::default()
        );
    }
}
