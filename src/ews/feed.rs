//! The recent change feed of each mailbox that live subscriptions watch, read from
//! the store once per change for all of them: with 1,000 streams open on one Inbox
//! a delivery costs one feed read and one folder list, not 2,000 store reads.
//!
//! A mailbox's entry lives as long as a subscriber holds its [`Feed`]; it keeps
//! the last [`KEEP`] changes, so a subscriber further behind reads the store itself.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use dashmap::DashMap;
use tokio::sync::Mutex;

use crate::store::{Backend, Change, Folder, StoreError};

/// Changes kept per mailbox: a burst beyond this is read by each subscriber alone.
const KEEP: usize = 256;

/// One mailbox's recent feed, shared by the subscribers that hold it.
pub type Feed = Arc<Mutex<Recent>>;

/// The recent feeds of watched mailboxes.
#[derive(Default)]
pub struct Feeds {
    mailboxes: DashMap<String, Weak<Mutex<Recent>>>,
}

/// What is known of one mailbox's feed.
#[derive(Default)]
pub struct Recent {
    /// `(from, upto)`: `changes` are every change with `from < seq <= upto`;
    /// `None` before the first read.
    span: Option<(i64, i64)>,
    changes: VecDeque<Change>,
    /// The mailbox's folders as of the last read (their item ids name events).
    folders: Vec<Folder>,
    /// Whether the last read reached the end of the feed as it was then.
    complete: bool,
}

/// A subscriber's read: `f`'s answer over the changes after its watermark, the
/// new watermark, and whether more changes wait.
pub struct Read<T> {
    pub answer: T,
    pub last: i64,
    pub more: bool,
    /// The store pruned its feed past the watermark (`store::housekeeping`):
    /// the events after it are lost, `answer` holds none of them, and the
    /// subscriber must be told (ErrorInvalidWatermark, a closed stream).
    pub pruned: bool,
}

/// A read that cannot continue from `after`: no events, nothing more.
fn pruned<T>(after: i64, f: impl FnOnce(&[Change], &[Folder]) -> T) -> Read<T> {
    Read {
        answer: f(&[], &[]),
        last: after,
        more: false,
        pruned: true,
    }
}

impl Feeds {
    /// The shared feed of `mailbox` (made when no subscriber holds it).
    pub fn feed(&self, mailbox: &str) -> Feed {
        let mut slot = self.mailboxes.entry(mailbox.to_string()).or_default();
        if let Some(feed) = slot.upgrade() {
            return feed;
        }
        let feed = Arc::new(Mutex::new(Recent::default()));
        *slot = Arc::downgrade(&feed);
        feed
    }

    /// Forgets mailboxes no subscriber holds any more.
    pub fn prune(&self) {
        self.mailboxes.retain(|_, w| w.strong_count() > 0);
    }
}

/// Up to `limit` changes of `mailbox` after `after`, given to `f` with the
/// mailbox's folders; read from the store only when the feed moved past what
/// `feed` holds (or `after` is older than all of it). A store error reads as no
/// change (the subscriber tries again at its next wake-up), but a feed pruned
/// past `after` is [`Read::pruned`].
pub async fn read<T>(
    feed: &Feed,
    store: &Arc<dyn Backend>,
    mailbox: &str,
    after: i64,
    limit: usize,
    f: impl FnOnce(&[Change], &[Folder]) -> T,
) -> Read<T> {
    let latest = *store.watch(mailbox).borrow();
    let mut r = feed.lock().await;
    let behind = r.span.is_none_or(|(from, _)| after < from);
    if behind && r.span.is_some() {
        // Older than what is shared: read for this subscriber alone.
        drop(r);
        let changes = match store.changes_since(mailbox, after, limit).await {
            Ok(changes) => changes,
            Err(StoreError::FeedPruned) => return pruned(after, f),
            Err(_) => Vec::new(),
        };
        let folders = store.folders(mailbox).await.unwrap_or_default();
        let last = changes.last().map_or(after, |c| c.seq);
        let more = changes.len() == limit || last < latest;
        return Read {
            answer: f(&changes, &folders),
            last,
            more,
            pruned: false,
        };
    }
    let upto = r.span.map_or(after, |(_, upto)| upto);
    if behind || latest > upto || (!r.complete && after >= upto) {
        let start = if behind { after } else { upto };
        let fresh = match store.changes_since(mailbox, start, limit).await {
            Ok(fresh) => fresh,
            Err(StoreError::FeedPruned) => {
                // What is shared is stale too: the next reader starts afresh.
                *r = Recent::default();
                return pruned(after, f);
            }
            Err(_) => Vec::new(),
        };
        if let Ok(folders) = store.folders(mailbox).await {
            r.folders = folders;
        }
        r.complete = fresh.len() < limit;
        let mut from = if behind {
            start
        } else {
            r.span.map_or(start, |s| s.0)
        };
        let upto = fresh.last().map_or(start, |c| c.seq);
        r.changes.extend(fresh);
        while r.changes.len() > KEEP {
            if let Some(c) = r.changes.pop_front() {
                from = c.seq;
            }
        }
        r.span = Some((from, upto));
    }
    let (_, upto) = r.span.unwrap_or((after, after));
    let complete = r.complete;
    let Recent {
        changes, folders, ..
    } = &mut *r;
    let changes = changes.make_contiguous();
    let start = changes.partition_point(|c| c.seq <= after);
    let mine = &changes[start..changes.len().min(start + limit)];
    let last = mine.last().map_or(after, |c| c.seq);
    let more = mine.len() == limit || last < upto.max(latest) || (!complete && last == upto);
    let answer = f(mine, folders);
    Read {
        answer,
        last,
        more,
        pruned: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FolderKind, FolderRef, Target};

    async fn deliver(store: &Arc<dyn Backend>, n: usize) {
        for _ in 0..n {
            let target = Target {
                folder: FolderRef::Kind("u".into(), FolderKind::Inbox),
                flags: vec![],
                properties: Vec::new(),
            };
            store
                .deliver(Arc::from(&b"Subject: x\r\n\r\nx"[..]), 1, vec![target])
                .await
                .unwrap();
        }
    }

    fn seqs(changes: &[Change], _: &[Folder]) -> Vec<i64> {
        changes.iter().map(|c| c.seq).collect()
    }

    #[tokio::test]
    async fn subscribers_share_one_read_and_each_gets_what_follows_its_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_embedded(&dir.path().join("s.sqlite")).unwrap();
        store.create_mailbox("u", 1 << 30).await.unwrap();
        let base = store.latest_change("u").await.unwrap();
        deliver(&store, 3).await;
        let feeds = Feeds::default();
        let (a, b) = (feeds.feed("u"), feeds.feed("u"));
        assert!(Arc::ptr_eq(&a, &b), "one feed per mailbox");
        let got = read(&a, &store, "u", base, 512, seqs).await;
        assert_eq!(got.answer, vec![base + 1, base + 2, base + 3]);
        assert_eq!((got.last, got.more), (base + 3, false));
        let got = read(&b, &store, "u", base + 2, 512, seqs).await;
        assert_eq!(got.answer, vec![base + 3], "served from what is shared");
        // New changes are read once they are announced; a limit leaves `more`.
        deliver(&store, 4).await;
        let got = read(&a, &store, "u", base + 3, 2, seqs).await;
        assert_eq!((got.answer, got.more), (vec![base + 4, base + 5], true));
        let got = read(&a, &store, "u", base + 5, 512, seqs).await;
        assert_eq!(
            (got.answer, got.last, got.more),
            (vec![base + 6, base + 7], base + 7, false)
        );
        // A subscriber older than what is kept reads the store alone.
        deliver(&store, KEEP + 10).await;
        let latest = store.latest_change("u").await.unwrap();
        let mut at = base + 7;
        loop {
            let got = read(&a, &store, "u", at, 100, seqs).await;
            assert!(got.answer.iter().all(|s| *s > at));
            assert!(
                got.answer.windows(2).all(|w| w[1] == w[0] + 1),
                "none skipped"
            );
            at = got.last;
            if !got.more {
                break;
            }
        }
        assert_eq!(at, latest);
        let old = read(&b, &store, "u", base, 5, seqs).await;
        assert_eq!(old.answer, (base + 1..=base + 5).collect::<Vec<_>>());
        assert!(old.more);
        drop((a, b, old));
        feeds.prune();
        assert!(feeds.mailboxes.is_empty(), "gone with its last subscriber");
    }
}
