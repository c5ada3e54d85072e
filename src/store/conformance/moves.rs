//! COPY and MOVE: UIDs, flags, shared bodies, quota, the feed of both mailboxes.

use super::*;
use crate::store::*;

pub async fn copy_keeps_flags_shares_bodies_and_charges_quota(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let inbox_f = folder(&store, "u", FolderKind::Inbox).await;
    let archive = folder(&store, "u", FolderKind::Archive).await;
    for (body, flags) in [
        (&b"one"[..], &["\\Seen"][..]),
        (b"two!", &[]),
        (b"three", &["$Work"]),
    ] {
        deliver_to(&store, inbox_f.id, body, flags).await;
    }
    let mut rx = store.watch("u");
    rx.borrow_and_update();
    let out = store
        .copy_messages(inbox_f.id, vec![3, 1, 42, 1], archive.id, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.uidvalidity, archive.uidvalidity);
    assert_eq!(out.pairs, vec![(1, 1), (3, 2)]);
    assert!(rx.has_changed().unwrap());
    let metas = store.messages(archive.id, 1, u32::MAX).await.unwrap();
    assert_eq!(metas[0].flags, vec!["\\Seen".to_string()]);
    assert_eq!(metas[1].flags, vec!["$Work".to_string()]);
    assert_eq!(metas[0].internal_date, 1_700_000_000_000);
    let src = store.messages(inbox_f.id, 1, u32::MAX).await.unwrap();
    assert_eq!(src.len(), 3, "a copy leaves the source alone");
    assert_eq!(metas[0].body_id, src[0].body_id, "bodies are shared");
    assert_ne!(metas[0].item_id, src[0].item_id);
    assert_eq!(ctx.count(Held::Bodies), 3);
    assert_eq!(store.quota("u").await.unwrap().used, 3 + 4 + 5 + 3 + 5);
    let a = folder(&store, "u", FolderKind::Archive).await;
    assert_eq!((a.uidnext, a.messages, a.unseen), (3, 2, 1));
    assert!(a.highest_modseq > archive.highest_modseq);
    let changes = store.changes_since("u", 0, 100).await.unwrap();
    let created: Vec<_> = changes
        .iter()
        .filter(|c| c.folder_id == archive.id)
        .map(|c| (c.kind, c.uid))
        .collect();
    assert_eq!(
        created,
        vec![(ChangeKind::Created, 1), (ChangeKind::Created, 2)]
    );
    // Nothing to copy: an empty outcome, nothing changes.
    let out = store
        .copy_messages(inbox_f.id, vec![77], archive.id, false)
        .await
        .unwrap()
        .unwrap();
    assert!(out.pairs.is_empty());
    assert_eq!(
        store
            .copy_messages(inbox_f.id, vec![1], 999_999, false)
            .await
            .unwrap(),
        Err(Refused::NoSuchFolder)
    );
    assert_eq!(
        store
            .copy_messages(999_999, vec![1], archive.id, true)
            .await
            .unwrap(),
        Err(Refused::NoSuchFolder)
    );
}

pub async fn move_across_mailboxes_expunges_and_moves_quota(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("a", 1 << 20).await.unwrap();
    store.create_mailbox("shared", 1 << 20).await.unwrap();
    let a = folder(&store, "a", FolderKind::Inbox).await;
    let s = folder(&store, "shared", FolderKind::Inbox).await;
    deliver_to(&store, a.id, b"first", &["\\Flagged"]).await;
    deliver_to(&store, a.id, b"second", &[]).await;
    let mut rx = store.watch("a");
    rx.borrow_and_update();
    let out = store
        .copy_messages(a.id, vec![1, 2], s.id, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.uidvalidity, s.uidvalidity);
    assert_eq!(out.pairs, vec![(1, 1), (2, 2)]);
    assert!(rx.has_changed().unwrap(), "the source mailbox is notified");
    assert!(store.messages(a.id, 1, u32::MAX).await.unwrap().is_empty());
    let moved = store.messages(s.id, 1, u32::MAX).await.unwrap();
    assert_eq!(moved[0].flags, vec!["\\Flagged".to_string()]);
    assert_eq!(store.body(moved[1].body_id).await.unwrap(), b"second");
    assert_eq!(store.quota("a").await.unwrap().used, 0);
    assert_eq!(store.quota("shared").await.unwrap().used, 11);
    let kinds: Vec<_> = store
        .changes_since("a", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|c| (c.kind, c.uid))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ChangeKind::Created, 1),
            (ChangeKind::Created, 2),
            (ChangeKind::Expunged, 1),
            (ChangeKind::Expunged, 2)
        ]
    );
    let kinds: Vec<_> = store
        .changes_since("shared", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, vec![ChangeKind::Created, ChangeKind::Created]);
    assert_eq!(ctx.count(Held::Bodies), 2);
}

pub async fn move_within_a_full_mailbox_is_allowed(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 10).await.unwrap();
    let i = folder(&store, "u", FolderKind::Inbox).await;
    let t = folder(&store, "u", FolderKind::DeletedItems).await;
    deliver_to(&store, i.id, b"0123456789", &[]).await;
    assert_eq!(
        store
            .copy_messages(i.id, vec![1], t.id, false)
            .await
            .unwrap(),
        Err(Refused::OverQuota)
    );
    let out = store
        .copy_messages(i.id, vec![1], t.id, true)
        .await
        .unwrap();
    assert_eq!(out.unwrap().pairs, vec![(1, 1)]);
    assert_eq!(store.quota("u").await.unwrap().used, 10);
}

pub async fn over_quota_copy_changes_nothing(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("a", 1 << 20).await.unwrap();
    store.create_mailbox("small", 8).await.unwrap();
    let a = folder(&store, "a", FolderKind::Inbox).await;
    let s = folder(&store, "small", FolderKind::Inbox).await;
    deliver_to(&store, a.id, b"12345", &[]).await;
    deliver_to(&store, a.id, b"67890", &[]).await;
    let a = folder(&store, "a", FolderKind::Inbox).await;
    let changes_before = ctx.count(Held::Changes);
    for remove in [false, true] {
        assert_eq!(
            store
                .copy_messages(a.id, vec![1, 2], s.id, remove)
                .await
                .unwrap(),
            Err(Refused::OverQuota)
        );
    }
    assert_eq!(store.messages(a.id, 1, u32::MAX).await.unwrap().len(), 2);
    assert!(store.messages(s.id, 1, u32::MAX).await.unwrap().is_empty());
    assert_eq!(folder(&store, "small", FolderKind::Inbox).await, s);
    assert_eq!(folder(&store, "a", FolderKind::Inbox).await, a);
    assert_eq!(store.quota("a").await.unwrap().used, 10);
    assert_eq!(store.quota("small").await.unwrap().used, 0);
    assert_eq!(ctx.count(Held::Changes), changes_before);
    // One of them fits.
    let out = store
        .copy_messages(a.id, vec![2], s.id, true)
        .await
        .unwrap();
    assert_eq!(out.unwrap().pairs, vec![(2, 1)]);
    assert_eq!(store.quota("a").await.unwrap().used, 5);
}
