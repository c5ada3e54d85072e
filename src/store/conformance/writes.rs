//! Writes: concurrent writers, group commit, a failing write among others,
//! durability across a reopen, one transaction for a submission.

use std::sync::Arc;

use super::*;
use crate::store::*;

pub async fn a_failing_write_does_not_spoil_its_batch(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                s.create_folder("u", "Dup").await.map(|_| ())
            } else {
                s.deliver(Arc::from(&b"x"[..]), 0, vec![inbox("u")])
                    .await
                    .map(|_| ())
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    // 30 deliveries + exactly one of the ten "Dup" creations.
    assert_eq!(ok, 31);
    assert_eq!(folder(&store, "u", FolderKind::Inbox).await.messages, 30);
}

/// 200 concurrent deliveries into one folder get UIDs 1..=200. (How many
/// commits they take is the backend's own: SQLite's writer batches them, see
/// its tests; PostgreSQL group-commits in its WAL writer.)
pub async fn concurrent_deliveries_get_dense_uids(ctx: Ctx) {
    two_hundred_concurrent_deliveries(&ctx.store).await;
}

/// Delivers 200 messages into a new mailbox `u`'s Inbox from 200 tasks at once
/// and checks their UIDs are 1..=200.
pub async fn two_hundred_concurrent_deliveries(store: &Arc<dyn Backend>) {
    store.create_mailbox("u", 1 << 30).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.deliver(Arc::from(vec![b'm'; 5000]), 0, vec![inbox("u")])
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let f = folder(store, "u", FolderKind::Inbox).await;
    assert_eq!(f.messages, 200);
    let uids: Vec<u32> = store
        .messages(f.id, 1, u32::MAX)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(
        uids,
        (1..=200).collect::<Vec<_>>(),
        "UIDs are dense and unique"
    );
}

/// Nothing acknowledged is lost: every write that returned is there, whole, after
/// the store is closed and opened again.
pub async fn acknowledged_writes_are_readable_after_a_reopen(mut ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 30).await.unwrap();
    store.create_mailbox("v", 1 << 30).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..20u32 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..5u32 {
                let body = format!("Subject: {w}-{i}\r\n\r\nbody\r\n");
                let res = s
                    .deliver(
                        Arc::from(body.into_bytes()),
                        i as i64,
                        vec![inbox("u"), inbox("v")],
                    )
                    .await
                    .unwrap();
                acked.push((res[0].as_ref().unwrap().uid, format!("{w}-{i}")));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let work = store.create_folder("u", "Work").await.unwrap();
    let u = folder(&store, "u", FolderKind::Inbox).await;
    store
        .store_flags(u.id, vec![1], FlagOp::Add, vec!["\\Seen".into()], None)
        .await
        .unwrap();
    let latest = store.latest_change("u").await.unwrap();
    drop(store);
    ctx.reopen();
    let store = ctx.store.clone();
    let u = folder(&store, "u", FolderKind::Inbox).await;
    let v = folder(&store, "v", FolderKind::Inbox).await;
    let in_u = store.messages(u.id, 1, u32::MAX).await.unwrap();
    let in_v = store.messages(v.id, 1, u32::MAX).await.unwrap();
    assert_eq!((in_u.len(), in_v.len()), (100, 100));
    for (uid, tag) in &acked {
        let m = in_u.iter().find(|m| m.uid == *uid).unwrap();
        let body = store.body(m.body_id).await.unwrap();
        assert!(body.starts_with(format!("Subject: {tag}\r\n").as_bytes()));
    }
    assert_eq!(in_u[0].flags, vec!["\\Seen".to_string()]);
    assert_eq!(u.uidnext, 101);
    let sum: u64 = in_u.iter().map(|m| m.size).sum();
    assert_eq!(store.quota("u").await.unwrap().used, sum);
    assert_eq!(named(&store, "u", "Work").await.item_id, work.item_id);
    assert_eq!(store.latest_change("u").await.unwrap(), latest);
    assert_eq!(ctx.count(Held::OrphanBodies), 0);
}

/// A submission's local copies and its queue entry commit together.
pub async fn deliver_and_enqueue_is_one_write(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u-1", 1 << 20).await.unwrap();
    let commits = |s: &Arc<dyn Backend>| {
        s.writer_stats()
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = commits(&store);
    let targets = vec![Target {
        folder: FolderRef::Kind("u-1".into(), FolderKind::SentItems),
        flags: vec![],
        properties: Vec::new(),
    }];
    let m = super::persistence::outbound(&["a@x.test"]);
    let body = m.body.clone();
    let stored = store
        .deliver_and_enqueue(body, 1000, targets, m, None)
        .await
        .unwrap();
    assert!(stored[0].is_ok());
    assert_eq!(commits(&store), before + 1, "one transaction");
    assert_eq!(store.queued_recipients().await.unwrap(), 1);
}

/// A write announced to group commit is counted until its announcement is
/// dropped (submitted, or abandoned with the work that was to make it).
pub async fn an_announced_write_is_counted_until_dropped(ctx: Ctx) {
    let store = ctx.store.clone();
    assert_eq!(store.announced_writes(), 0);
    let first = store.expect_write();
    let second = store.expect_write();
    assert_eq!(store.announced_writes(), 2);
    drop(first);
    assert_eq!(store.announced_writes(), 1);
    store.create_mailbox("u", 1 << 20).await.unwrap();
    drop(second);
    assert_eq!(store.announced_writes(), 0);
}
