//! The selected folder as this session's client knows it: the UIDs in sequence
//! order, so expunges and flag changes made by others are announced only when the
//! protocol allows, and only once.
//!
//! Updates come from the store's change feed (from `cursor` on), so a delivery
//! costs each watching session a read of the few changed rows, not of the whole
//! folder, and an idle session holds its UIDs as runs (a few dozen bytes for a
//! folder of thousands of messages, `UidRuns`). A feed backlog too long to replay
//! falls back to reading the folder once, as does a cursor older than what the
//! store kept of its feed (`store::housekeeping` prunes it). No MODSEQ is kept per message: a flag
//! change from the feed is new to the client unless the session reported it
//! itself (`echoes`), so the view needs only MODSEQ watermarks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;

use imap_codec::imap_types::sequence::SequenceSet;

use super::recent::{FolderKey, RecentClaims};
use super::sequence::Merged;
use super::uid_runs::UidRuns;
use crate::store::{ChangeKind, Folder, MessageMeta, Store, StoreError};

/// Changes replayed per read of the feed; a longer backlog reloads the folder.
const FEED_BATCH: usize = 1000;

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
    /// The number of messages recent in this session, when messages arrived.
    pub recent: Option<u32>,
    /// (sequence number, message) whose flags changed.
    pub flags: Vec<(u32, Changed)>,
}

/// The selected folder.
pub struct View {
    pub folder: Folder,
    pub read_only: bool,
    uids: UidRuns,
    /// Ticks on every change in the mailbox (IDLE waits on it).
    pub watch: watch::Receiver<i64>,
    /// The last change of the feed applied to `uids`.
    cursor: i64,
    /// The highest MODSEQ of the folder state the view reflects: at SELECT, then
    /// of every change replayed. A reload reports flags changed above it.
    synced: u64,
    /// The highest MODSEQ the client has been told (HIGHESTMODSEQ).
    highest: u64,
    /// Flag changes this session reported itself since the last refresh, by UID:
    /// their echo in the feed is not announced again.
    echoes: BTreeMap<u32, u64>,
    /// Expunged by others, not yet announced (RFC 9051 7.5.1 holds them back).
    pending_expunge: BTreeSet<u32>,
    /// The SEARCHRES result (RFC 5182), UIDs ascending: kept with the view so that
    /// SELECT, EXAMINE, UNSELECT and CLOSE reset it by dropping the view.
    pub saved: Vec<u32>,
    /// The keywords the client has been told of in a FLAGS response.
    keywords: BTreeSet<String>,
    /// The messages recent in this session (`recent`), by UID.
    recent: BTreeSet<u32>,
    claims: Arc<RecentClaims>,
    /// The sequence number of the first message without \Seen at SELECT.
    pub first_unseen: Option<u32>,
}

impl View {
    /// Opens `folder`: reads its messages and subscribes to the mailbox's changes.
    pub async fn open(
        store: &Arc<dyn Store>,
        folder: Folder,
        read_only: bool,
        claims: &Arc<RecentClaims>,
    ) -> crate::store::Result<View> {
        let mut watch = store.watch(&folder.mailbox_id);
        watch.mark_unchanged();
        // Cursor first: a change racing the read is replayed, and replay is idempotent.
        let cursor = store.latest_change(&folder.mailbox_id).await?;
        let msgs = load(store, folder.id).await?;
        let synced = msgs
            .iter()
            .map(|m| m.modseq)
            .fold(folder.highest_modseq, u64::max);
        let mut keywords = BTreeSet::new();
        for m in &msgs {
            learn(&mut keywords, &m.flags);
        }
        let first_unseen = msgs
            .iter()
            .position(|m| !m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")))
            .map(|i| i as u32 + 1);
        let mut view = View {
            uids: UidRuns::from_ascending(msgs.iter().map(|m| m.uid)),
            folder,
            read_only,
            watch,
            cursor,
            synced,
            highest: synced,
            echoes: BTreeMap::new(),
            pending_expunge: BTreeSet::new(),
            saved: Vec::new(),
            keywords,
            recent: BTreeSet::new(),
            claims: claims.clone(),
            first_unseen,
        };
        view.take_recent(msgs.iter().map(|m| m.uid));
        Ok(view)
    }

    fn key(&self) -> FolderKey {
        (self.folder.id, self.folder.uidvalidity)
    }

    /// Notes which of `new` (ascending UIDs, just added to the view) are recent
    /// here: those this session claims first, or, read-only, those nobody claimed.
    fn take_recent(&mut self, new: impl Iterator<Item = u32>) {
        let mine = if self.read_only {
            self.claims.first_unclaimed(self.key())..u32::MAX
        } else {
            let end = self.uids.last().saturating_add(1);
            self.claims.claim(self.key(), end)
        };
        if !mine.is_empty() {
            self.recent.extend(new.filter(|u| mine.contains(u)));
        }
    }

    /// Whether the message is recent in this session.
    pub fn is_recent(&self, uid: u32) -> bool {
        self.recent.contains(&uid)
    }

    /// The UIDs recent in this session, for a search to test against.
    pub fn recent_uids(&self) -> BTreeSet<u32> {
        self.recent.clone()
    }

    /// How many messages are recent in this session (RECENT).
    pub fn recent_count(&self) -> u32 {
        self.recent.len() as u32
    }

    /// The FLAGS and PERMANENTFLAGS responses: the system flags and every keyword
    /// in use (RFC 9051 7.3.5), and whether keywords can be created.
    pub fn flags_responses(&self) -> [String; 2] {
        let mut flags = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
        for k in &self.keywords {
            flags.push(' ');
            flags.push_str(k);
        }
        let permanent = if self.read_only {
            "OK [PERMANENTFLAGS ()] Read-only mailbox".to_string()
        } else {
            format!("OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted")
        };
        [format!("FLAGS ({flags})"), permanent]
    }

    /// Notes the keywords among `flags`; true when one is new to the client, who
    /// must then get the FLAGS responses again before it is used.
    pub fn learn_keywords<'f>(&mut self, flags: impl IntoIterator<Item = &'f String>) -> bool {
        learn(&mut self.keywords, flags)
    }

    /// UIDs in sequence order.
    pub fn uids(&self) -> Vec<u32> {
        self.uids.to_vec()
    }

    /// The number of messages the client knows (EXISTS).
    pub fn len(&self) -> usize {
        self.uids.len()
    }

    /// The UID at 0-based index `i`; `i` comes from resolving a set against this
    /// view, so it is in range.
    pub fn uid_at(&self, i: usize) -> u32 {
        self.uids
            .uid_at(i)
            .expect("index resolved against this view")
    }

    /// The 0-based index of `uid` in the client's numbering.
    pub fn index_of(&self, uid: u32) -> Option<usize> {
        self.uids.index_of(uid)
    }

    /// The highest UID the client knows (`*` in UID sets), 0 when empty.
    pub fn last_uid(&self) -> u32 {
        self.uids.last()
    }

    /// The largest MODSEQ the client has seen, at least the folder's at SELECT.
    pub fn highest_modseq(&self) -> u64 {
        self.highest
    }

    /// Applies the change feed and computes what to tell the client. With
    /// `allow_expunge` false, expunged messages stay in the view (RFC 9051 7.5.1).
    pub async fn refresh(
        &mut self,
        store: &Arc<dyn Store>,
        allow_expunge: bool,
    ) -> crate::store::Result<Updates> {
        self.watch.mark_unchanged();
        let changes = match store
            .changes_since(&self.folder.mailbox_id, self.cursor, FEED_BATCH)
            .await
        {
            Ok(changes) => changes,
            // The changes after the cursor were pruned: the folder tells all.
            Err(StoreError::FeedPruned) => return self.reload(store, allow_expunge).await,
            Err(e) => return Err(e),
        };
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
            self.synced = self.synced.max(c.modseq);
            match c.kind {
                ChangeKind::Created => created.push((c.uid, c.modseq)),
                ChangeKind::Flags | ChangeKind::ReadFlag => {
                    touched.insert(c.uid);
                }
                ChangeKind::Expunged => {
                    // Created and expunged within this batch: a new message the
                    // client never sees. The view may hold it all the same (read
                    // at SELECT after the feed's cursor was taken), so it is
                    // expunged from the view too; a UID it lacks is dropped then.
                    created.retain(|&(uid, _)| uid != c.uid);
                    self.pending_expunge.insert(c.uid);
                }
                _ => {}
            }
        }
        let mut updates = Updates::default();
        self.announce_expunges(allow_expunge, &mut updates);
        let last = self.uids.last();
        created.retain(|&(uid, _)| uid > last);
        created.sort_unstable();
        created.dedup_by_key(|m| m.0);
        if !created.is_empty() {
            for &(uid, modseq) in &created {
                self.uids.push(uid);
                self.highest = self.highest.max(modseq);
            }
            self.take_recent(created.iter().map(|c| c.0));
            updates.exists = Some(self.uids.len() as u32);
            updates.recent = Some(self.recent_count());
        }
        if let (Some(&first), Some(&last)) = (touched.first(), touched.last()) {
            for m in store.messages(self.folder.id, first, last).await? {
                if touched.contains(&m.uid) {
                    self.report_flags(m, &mut updates);
                }
            }
        }
        self.echoes = BTreeMap::new();
        Ok(updates)
    }

    /// Removes the held-back expunges when the protocol allows announcing them.
    fn announce_expunges(&mut self, allow_expunge: bool, updates: &mut Updates) {
        if !allow_expunge || self.pending_expunge.is_empty() {
            return;
        }
        for uid in std::mem::take(&mut self.pending_expunge) {
            self.recent.remove(&uid);
            if let Some(i) = self.uids.remove(uid) {
                updates.expunged.push((i as u32 + 1, uid));
            }
        }
    }

    /// Records a message's current flags for the client unless it has seen them.
    fn report_flags(&mut self, m: MessageMeta, updates: &mut Updates) {
        let echo = self.echoes.get(&m.uid).is_some_and(|&own| own >= m.modseq);
        if let (false, Some(i)) = (echo, self.uids.index_of(m.uid)) {
            self.highest = self.highest.max(m.modseq);
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
        let gone: Vec<u32> = self.uids.iter().filter(|u| !present.contains(u)).collect();
        self.pending_expunge.extend(gone);
        self.announce_expunges(allow_expunge, &mut updates);
        let (last, before, synced) = (self.uids.last(), self.uids.len(), self.synced);
        let mut arrived = Vec::new();
        for m in now {
            self.synced = self.synced.max(m.modseq);
            if m.uid > last {
                self.uids.push(m.uid);
                arrived.push(m.uid);
                self.highest = self.highest.max(m.modseq);
            } else if m.modseq > synced {
                self.report_flags(m, &mut updates);
            }
        }
        if self.uids.len() != before {
            self.take_recent(arrived.into_iter());
            updates.exists = Some(self.uids.len() as u32);
            updates.recent = Some(self.recent_count());
        }
        self.echoes = BTreeMap::new();
        Ok(updates)
    }

    /// Records a MODSEQ the session itself just reported (STORE, FETCH setting
    /// \Seen), so the feed's echo of that change is not announced again.
    pub fn note_flags(&mut self, uid: u32, modseq: u64) {
        self.highest = self.highest.max(modseq);
        let own = self.echoes.entry(uid).or_default();
        *own = (*own).max(modseq);
    }

    /// What VANISHED (EARLIER) names for a client at `modseq` (QRESYNC), within
    /// `within` when given (`*` is the highest UID the client may know), as
    /// ascending runs of UIDs: those expunged above `modseq` that the view no
    /// longer holds. When the store cannot say (its expunge records were pruned
    /// past `modseq`, or the read failed), every UID the client may know that
    /// the view lacks ([`absent_runs`]): RFC 7162 3.2.5.1 lets VANISHED
    /// (EARLIER) name UIDs that never existed, so no expunge is ever left out.
    pub async fn vanished_since(
        &self,
        store: &Arc<dyn Store>,
        modseq: u64,
        within: Option<&SequenceSet>,
    ) -> Vec<(u32, u32)> {
        let present = self.uids();
        // The highest UID the client may know: below UIDNEXT at SELECT (read
        // before the view's messages), or one the view learnt since.
        let bound = self.folder.uidnext.saturating_sub(1).max(self.uids.last());
        let expunged = store
            .expunged_since(&self.folder.mailbox_id, self.folder.id, modseq)
            .await;
        match expunged {
            Ok(uids) => {
                let within = within.map(|set| Merged::of(set, bound));
                let uids: Vec<u32> = uids
                    .into_iter()
                    .filter(|&uid| {
                        present.binary_search(&uid).is_err()
                            && within.as_ref().is_none_or(|set| set.contains(uid))
                    })
                    .collect();
                runs_of(&uids)
            }
            Err(e) => {
                if !matches!(e, StoreError::FeedPruned) {
                    tracing::warn!(error = %e, "IMAP: expunge records unreadable; naming every absent UID");
                }
                let absent = absent_runs(present.iter().copied(), bound);
                match within {
                    Some(set) => Merged::of(set, bound).intersect(&absent),
                    None => absent,
                }
            }
        }
    }

    /// Removes messages the session expunged itself; returns their sequence numbers
    /// in sending order (each computed after the previous removal).
    pub fn remove(&mut self, uids: &[u32]) -> Vec<u32> {
        for uid in uids {
            self.recent.remove(uid);
        }
        uids.iter()
            .filter_map(|&uid| self.uids.remove(uid))
            .map(|i| i as u32 + 1)
            .collect()
    }
}

/// The UIDs from 1 to `bound` missing from `present` (ascending), as ascending
/// runs `(first, last)`: one run per gap, however many UIDs it spans.
pub fn absent_runs(present: impl Iterator<Item = u32>, bound: u32) -> Vec<(u32, u32)> {
    let mut runs = Vec::new();
    // The first UID not yet accounted for; u64, as it may pass u32::MAX.
    let mut next = 1u64;
    for uid in present {
        if uid > bound {
            break;
        }
        if u64::from(uid) > next {
            runs.push((next as u32, uid - 1));
        }
        next = next.max(u64::from(uid) + 1);
    }
    if next <= u64::from(bound) {
        runs.push((next as u32, bound));
    }
    runs
}

/// Ascending UIDs as ascending runs of consecutive ones.
pub fn runs_of(uids: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &uid in uids {
        match runs.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(uid) => last.1 = uid,
            Some(last) if last.1 >= uid => {}
            _ => runs.push((uid, uid)),
        }
    }
    runs
}

async fn load(store: &Arc<dyn Store>, folder: i64) -> crate::store::Result<Vec<MessageMeta>> {
    store.messages(folder, 1, u32::MAX).await
}

/// Adds the keywords (flags not starting with a backslash) among `flags`; true
/// when one was new.
fn learn<'f>(keywords: &mut BTreeSet<String>, flags: impl IntoIterator<Item = &'f String>) -> bool {
    let mut new = false;
    for f in flags {
        if !f.starts_with('\\') && !keywords.contains(f) {
            keywords.insert(f.clone());
            new = true;
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Backend, FlagOp, FolderKind, FolderRef, Target};

    async fn fixture() -> (tempfile::TempDir, Arc<dyn Store>, Folder) {
        let (dir, backend, inbox) = backend_fixture().await;
        (dir, backend, inbox)
    }

    /// Mailbox `m` with its Inbox, on a store whose feed can be pruned.
    async fn backend_fixture() -> (tempfile::TempDir, Arc<dyn Backend>, Folder) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(&dir.path().join("s.sqlite"));
        store.create_mailbox("m", 1 << 30).await.unwrap();
        let inbox = reread(&store, "m").await;
        (dir, store, inbox)
    }

    /// The Inbox of `mailbox` as it is now.
    async fn reread(store: &Arc<dyn Backend>, mailbox: &str) -> Folder {
        store
            .folders(mailbox)
            .await
            .unwrap()
            .into_iter()
            .find(|f| f.kind == Some(FolderKind::Inbox))
            .unwrap()
    }

    async fn deliver(store: &Arc<dyn Store>) -> u32 {
        let target = Target {
            folder: FolderRef::Kind("m".into(), FolderKind::Inbox),
            flags: vec![],
            properties: Vec::new(),
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
        let mut view = View::open(&store, inbox.clone(), false, &Arc::default())
            .await
            .unwrap();
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

    /// SELECT takes the feed's cursor before it reads the folder, so a message
    /// delivered in between is both in the view and in the first replay; when
    /// another session expunges it before that replay, the view must still drop
    /// it and announce the EXPUNGE (it used to stay as a ghost the client kept
    /// numbering, so its sequence numbers drifted from every other session's).
    #[tokio::test]
    async fn a_message_read_at_select_and_expunged_before_the_first_replay_goes() {
        let (_dir, store, inbox) = fixture().await;
        let a = deliver(&store).await;
        let before = store.latest_change(&inbox.mailbox_id).await.unwrap();
        let b = deliver(&store).await;
        let mut view = View::open(&store, inbox.clone(), false, &Arc::default())
            .await
            .unwrap();
        // As if the cursor had been taken before b's delivery.
        view.cursor = before;
        assert_eq!(view.uids(), vec![a, b]);
        store.expunge(inbox.id, vec![b]).await.unwrap();
        let u = view.refresh(&store, true).await.unwrap();
        assert_eq!(u.expunged, vec![(2, b)]);
        assert_eq!(u.exists, None);
        assert_eq!(view.uids(), vec![a]);
    }

    /// \Recent: the first read-write view of a message has it recent, a later
    /// one does not; EXAMINE shows what nobody claimed without claiming it.
    #[tokio::test]
    async fn a_message_is_recent_in_the_first_session_to_see_it() {
        let (_dir, store, inbox) = fixture().await;
        let claims: Arc<RecentClaims> = Arc::default();
        let a = deliver(&store).await;
        let looker = View::open(&store, inbox.clone(), true, &claims)
            .await
            .unwrap();
        assert!(
            looker.is_recent(a),
            "EXAMINE shows unclaimed messages as recent"
        );
        let mut first = View::open(&store, inbox.clone(), false, &claims)
            .await
            .unwrap();
        assert!(first.is_recent(a));
        assert_eq!(first.recent_count(), 1);
        let mut second = View::open(&store, inbox.clone(), false, &claims)
            .await
            .unwrap();
        assert_eq!(second.recent_count(), 0);
        assert_eq!(second.first_unseen, Some(1));
        // A delivery is recent for whichever selected session is told first.
        let b = deliver(&store).await;
        let u = second.refresh(&store, true).await.unwrap();
        assert_eq!((u.exists, u.recent), (Some(2), Some(1)));
        assert!(second.is_recent(b));
        let u = first.refresh(&store, true).await.unwrap();
        assert_eq!((u.exists, u.recent), (Some(2), Some(1)), "still only a");
        assert!(!first.is_recent(b));
        // Expunged: no longer counted.
        store.expunge(inbox.id, vec![a]).await.unwrap();
        first.refresh(&store, true).await.unwrap();
        assert_eq!(first.recent_count(), 0);
        let again = View::open(&store, inbox, true, &claims).await.unwrap();
        assert_eq!(again.recent_count(), 0, "everything is claimed now");
    }

    #[tokio::test]
    async fn a_backlog_longer_than_a_batch_reloads_the_folder() {
        let (_dir, store, inbox) = fixture().await;
        let mut view = View::open(&store, inbox, false, &Arc::default())
            .await
            .unwrap();
        for _ in 0..FEED_BATCH + 5 {
            deliver(&store).await;
        }
        let u = view.refresh(&store, true).await.unwrap();
        assert_eq!(u.exists, Some(FEED_BATCH as u32 + 5));
        assert_eq!(view.len(), FEED_BATCH + 5);
        assert_eq!(
            view.refresh(&store, true).await.unwrap(),
            Updates::default()
        );
    }

    #[test]
    fn absent_uids_are_the_gaps_up_to_the_bound_as_runs() {
        assert_eq!(
            absent_runs([2, 3, 7].into_iter(), 9),
            vec![(1, 1), (4, 6), (8, 9)]
        );
        assert_eq!(absent_runs([1, 2].into_iter(), 2), vec![]);
        assert_eq!(absent_runs(std::iter::empty(), 3), vec![(1, 3)]);
        assert_eq!(absent_runs(std::iter::empty(), 0), vec![]);
        assert_eq!(
            absent_runs([5, 9].into_iter(), 6),
            vec![(1, 4), (6, 6)],
            "UIDs above the bound are not the client's"
        );
        assert_eq!(
            absent_runs([u32::MAX].into_iter(), u32::MAX),
            vec![(1, u32::MAX - 1)]
        );
    }

    #[test]
    fn uids_become_runs_of_consecutive_ones() {
        assert_eq!(runs_of(&[1, 2, 3, 5, 7, 8]), vec![(1, 3), (5, 5), (7, 8)]);
        assert_eq!(runs_of(&[]), vec![]);
        assert_eq!(
            runs_of(&[4, 4, u32::MAX]),
            vec![(4, 4), (u32::MAX, u32::MAX)]
        );
    }

    /// QRESYNC's answer from a view: exact while the store keeps the expunge
    /// records, every absent UID the client may know once they were pruned.
    #[tokio::test]
    async fn vanished_is_exact_or_every_absent_uid_after_pruning() {
        let (_dir, backend, folder) = backend_fixture().await;
        let store: Arc<dyn Store> = backend.clone();
        for _ in 0..5 {
            deliver(&store).await;
        }
        store.expunge(folder.id, vec![2]).await.unwrap();
        let before = reread(&backend, "m").await.highest_modseq;
        store.expunge(folder.id, vec![4]).await.unwrap();
        let view = View::open(&store, reread(&backend, "m").await, true, &Arc::default())
            .await
            .unwrap();
        assert_eq!(
            view.vanished_since(&store, before, None).await,
            vec![(4, 4)]
        );
        // Everything but the latest change (the expunge of 4) pruned.
        let later = crate::clock::now_ms() + 3_600_000;
        assert!(backend.prune_feed("m", later, 1, 100).await.unwrap() > 0);
        assert_eq!(
            view.vanished_since(&store, before, None).await,
            vec![(4, 4)],
            "the kept record of 4 is exact above the pruned expunge of 2"
        );
        assert_eq!(
            view.vanished_since(&store, 0, None).await,
            vec![(2, 2), (4, 4)],
            "below it, every absent UID"
        );
        let known = SequenceSet::try_from("3:*").unwrap();
        assert_eq!(
            view.vanished_since(&store, 0, Some(&known)).await,
            vec![(4, 4)]
        );
    }

    #[tokio::test]
    async fn a_cursor_below_the_pruned_feed_reloads_the_folder() {
        let (_dir, backend, folder) = backend_fixture().await;
        let store: Arc<dyn Store> = backend.clone();
        let a = deliver(&store).await;
        let b = deliver(&store).await;
        let mut view = View::open(&store, folder.clone(), false, &Arc::default())
            .await
            .unwrap();
        store.expunge(folder.id, vec![a]).await.unwrap();
        let c = deliver(&store).await;
        let later = crate::clock::now_ms() + 3_600_000;
        assert!(backend.prune_feed("m", later, 1, 100).await.unwrap() > 0);
        let u = view.refresh(&store, true).await.unwrap();
        assert_eq!(u.expunged, vec![(1, a)]);
        assert_eq!(u.exists, Some(2));
        assert_eq!(view.uids(), vec![b, c]);
        assert_eq!(
            view.refresh(&store, true).await.unwrap(),
            Updates::default()
        );
    }
}
