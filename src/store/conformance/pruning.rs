//! Feed pruning (`store::housekeeping`): what goes, what stays, and what each
//! reader of the feed is told when its position is older than what was kept.

use super::*;
use crate::store::housekeeping::FEED_PRUNE_BATCH;
use crate::store::*;

/// A moment an hour from now: every change recorded so far is older.
fn later() -> i64 {
    crate::clock::now_ms() + 3_600_000
}

/// The seqs of a mailbox's whole feed.
async fn seqs(store: &Arc<dyn Backend>, mailbox: &str) -> Vec<i64> {
    store
        .changes_since(mailbox, 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect()
}

pub async fn pruning_keeps_recent_and_latest_changes_and_refuses_older_positions(ctx: Ctx) {
    let store = ctx.store.clone();
    for m in ["u", "v"] {
        store.create_mailbox(m, 1 << 20).await.unwrap();
    }
    let inbox_u = folder(&store, "u", FolderKind::Inbox).await;
    let inbox_v = folder(&store, "v", FolderKind::Inbox).await;
    for i in 0..10u8 {
        deliver_to(&store, inbox_u.id, &[b'a' + i], &[]).await;
    }
    for i in 0..3u8 {
        deliver_to(&store, inbox_v.id, &[b'a' + i], &[]).await;
    }
    let all = seqs(&store, "u").await;
    assert_eq!(all.len(), 10);
    let latest = store.latest_change("u").await.unwrap();
    let rows = ctx.count(Held::Changes);
    assert_eq!(
        store.feed_candidates(4).await.unwrap(),
        vec!["u".to_string()],
        "v holds no more than 4 changes"
    );

    // Nothing is older than an hour ago: nothing goes, whatever the count.
    let hour_ago = crate::clock::now_ms() - 3_600_000;
    assert_eq!(store.prune_feed("u", hour_ago, 0, 100).await.unwrap(), 0);
    assert_eq!(seqs(&store, "u").await, all);

    // Old enough: all but the latest 4, a bounded batch at a time.
    assert_eq!(store.prune_feed("u", later(), 4, 2).await.unwrap(), 2);
    assert_eq!(store.prune_feed("u", later(), 4, 100).await.unwrap(), 4);
    assert_eq!(store.prune_feed("u", later(), 4, 100).await.unwrap(), 0);
    assert_eq!(ctx.count(Held::Changes), rows - 6);
    assert!(store.feed_candidates(4).await.unwrap().is_empty());

    // A reader at or above the horizon continues; one below it is told.
    let horizon = all[5];
    let kept = store.changes_since("u", horizon, 100).await.unwrap();
    assert_eq!(kept.iter().map(|c| c.seq).collect::<Vec<_>>(), all[6..]);
    for old in [0, all[0], all[4], horizon - 1] {
        assert!(
            matches!(
                store.changes_since("u", old, 100).await,
                Err(StoreError::FeedPruned)
            ),
            "position {old} is below the horizon"
        );
    }
    assert_eq!(store.latest_change("u").await.unwrap(), latest);
    assert!(
        store
            .changes_since("u", latest, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Another mailbox's feed is untouched.
    assert_eq!(store.changes_since("v", 0, 100).await.unwrap().len(), 3);

    // The feed goes on above the horizon.
    deliver_to(&store, inbox_u.id, b"new", &[]).await;
    let next = store.changes_since("u", latest, 100).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].seq > latest);
    assert_eq!(store.latest_change("u").await.unwrap(), next[0].seq);

    // A mailbox never pruned, or unknown, has no horizon.
    assert!(store.prune_feed("nobody", later(), 0, 100).await.unwrap() == 0);
    assert!(
        store
            .changes_since("nobody", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The latest changes stay however old they are: a quiet mailbox keeps its
/// whole recent history, so its position stays valid.
pub async fn pruning_keeps_the_latest_changes_however_old(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let inbox = folder(&store, "u", FolderKind::Inbox).await;
    for i in 0..3u8 {
        deliver_to(&store, inbox.id, &[b'a' + i], &[]).await;
    }
    assert!(store.feed_candidates(3).await.unwrap().is_empty());
    assert_eq!(
        store
            .prune_feed("u", later(), 3, FEED_PRUNE_BATCH)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.changes_since("u", 0, 100).await.unwrap().len(), 3);
    // Keeping one: the latest change is always kept, so latest_change stays.
    let latest = store.latest_change("u").await.unwrap();
    assert_eq!(store.prune_feed("u", later(), 1, 100).await.unwrap(), 2);
    assert_eq!(store.latest_change("u").await.unwrap(), latest);
}

/// QRESYNC's VANISHED (EARLIER) after pruning: exact above the folder's pruned
/// expunges, refused (never short) below them, and other folders unaffected.
pub async fn expunged_since_stays_exact_or_refuses_after_pruning(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let inbox = folder(&store, "u", FolderKind::Inbox).await;
    let sent = folder(&store, "u", FolderKind::SentItems).await;
    let mut uids = Vec::new();
    for body in [&b"a"[..], b"b", b"c", b"d"] {
        uids.push(deliver_to(&store, inbox.id, body, &[]).await);
    }
    let other = deliver_to(&store, sent.id, b"e", &[]).await;
    store.expunge(inbox.id, vec![uids[0]]).await.unwrap();
    let first_expunge = store
        .changes_since("u", 0, 100)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(first_expunge.kind, ChangeKind::Expunged);
    store.expunge(inbox.id, vec![uids[1]]).await.unwrap();
    store.expunge(sent.id, vec![other]).await.unwrap();
    store
        .store_flags(inbox.id, vec![uids[2]], FlagOp::Add, vec!["x".into()], None)
        .await
        .unwrap();
    // Prune through the first expunge: keep what came after it.
    let after = store
        .changes_since("u", first_expunge.seq, 100)
        .await
        .unwrap()
        .len();
    let feed = seqs(&store, "u").await;
    let pruned = store.prune_feed("u", later(), after, 100).await.unwrap();
    assert_eq!(pruned as usize, feed.len() - after);

    // Below the pruned expunge's MODSEQ the answer could be short: refused.
    for modseq in [0, first_expunge.modseq - 1] {
        assert!(
            matches!(
                store.expunged_since("u", inbox.id, modseq).await,
                Err(StoreError::FeedPruned)
            ),
            "MODSEQ {modseq} is below the pruned expunge"
        );
    }
    // At or above it every expunge is still recorded.
    assert_eq!(
        store
            .expunged_since("u", inbox.id, first_expunge.modseq)
            .await
            .unwrap(),
        vec![uids[1]]
    );
    // Sent Items lost no expunge record: answered from 0 as before.
    assert_eq!(
        store.expunged_since("u", sent.id, 0).await.unwrap(),
        vec![other]
    );
}
