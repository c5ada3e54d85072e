//! The change feed: order, MODSEQ, watchers, item ids, VANISHED (EARLIER).

use std::sync::Arc;

use super::*;
use crate::store::*;

pub async fn change_feed_and_watch_see_every_change(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let mut rx = store.watch("u");
    let f = folder(&store, "u", FolderKind::Inbox).await;
    store
        .deliver(Arc::from(&b"x"[..]), 0, vec![inbox("u")])
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(1), rx.changed())
        .await
        .unwrap()
        .unwrap();
    store
        .store_flags(f.id, vec![1], FlagOp::Add, vec!["\\Seen".into()], None)
        .await
        .unwrap();
    store.expunge(f.id, vec![1]).await.unwrap();
    let changes = store.changes_since("u", 0, 100).await.unwrap();
    let kinds: Vec<_> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::Created,
            ChangeKind::ReadFlag,
            ChangeKind::Expunged
        ],
        "a change of \\Seen alone is a ReadFlag"
    );
    assert!(changes.windows(2).all(|w| w[0].modseq < w[1].modseq));
    assert_eq!(*rx.borrow_and_update(), changes[2].seq);
    assert_eq!(
        store
            .changes_since("u", changes[0].seq, 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// VANISHED (EARLIER) asks for the UIDs expunged from one folder above a MODSEQ.
pub async fn expunged_since_names_one_folders_expunges_above_a_modseq(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let inbox = folder(&store, "u", FolderKind::Inbox).await;
    let sent = folder(&store, "u", FolderKind::SentItems).await;
    let mut uids = Vec::new();
    for body in [&b"a"[..], b"b", b"c"] {
        uids.push(deliver_to(&store, inbox.id, body, &[]).await);
    }
    let other = deliver_to(&store, sent.id, b"d", &[]).await;
    store.expunge(inbox.id, vec![uids[0]]).await.unwrap();
    let between = store
        .changes_since("u", 0, 100)
        .await
        .unwrap()
        .last()
        .unwrap()
        .modseq;
    store.expunge(inbox.id, vec![uids[2]]).await.unwrap();
    store.expunge(sent.id, vec![other]).await.unwrap();
    let all = store.expunged_since("u", inbox.id, 0).await.unwrap();
    assert_eq!(all, vec![uids[0], uids[2]]);
    let later = store.expunged_since("u", inbox.id, between).await.unwrap();
    assert_eq!(later, vec![uids[2]]);
    assert_eq!(
        store.expunged_since("u", sent.id, 0).await.unwrap(),
        vec![other]
    );
}

/// A sync names every item it reports, a deleted one too: each change carries the
/// item id of its message (or folder).
pub async fn every_change_names_its_item(ctx: Ctx) {
    let store = ctx.store.clone();
    let life = live(&store).await;
    let (stored, copy, moved) = (&life.delivered, &life.copy, &life.moved);
    store.expunge(life.inbox.id, vec![1, 2]).await.unwrap();
    let work = store.create_folder("u", "Work").await.unwrap();
    store.rename_folder(work.id, "Jobs").await.unwrap();
    store.delete_folder(work.id).await.unwrap();
    let changes: Vec<(ChangeKind, String)> = store
        .changes_since("u", life.start, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.item_id))
        .collect();
    let id = |s: &str| s.to_string();
    assert_eq!(
        changes,
        vec![
            (ChangeKind::ReadFlag, id(&stored.item_id)),
            (ChangeKind::Created, id(&copy.item_id)),
            (ChangeKind::Created, id(&moved.item_id)),
            (ChangeKind::Expunged, id(&copy.item_id)),
            (ChangeKind::Expunged, id(&stored.item_id)),
            (ChangeKind::Expunged, id(&moved.item_id)),
            (ChangeKind::FolderCreated, id(&work.item_id)),
            (ChangeKind::FolderRenamed, id(&work.item_id)),
            (ChangeKind::FolderDeleted, id(&work.item_id)),
        ]
    );
    let first = store.changes_since("u", 0, 1).await.unwrap().remove(0);
    assert_eq!(
        (first.kind, first.item_id),
        (ChangeKind::Created, stored.item_id.clone())
    );
}
