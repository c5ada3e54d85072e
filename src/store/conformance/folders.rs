//! Folders: creation, deletion, rename (RFC 9051 6.3.6), subscription.

use std::sync::Arc;

use super::*;
use crate::store::*;

pub async fn user_folders_can_be_created_and_deleted(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let work = store.create_folder("u", "Work").await.unwrap();
    assert_eq!(work.kind, None);
    let sub = store.create_folder("u", "Work/2026").await.unwrap();
    assert!(matches!(
        store.create_folder("u", "Work").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_folder("u", "inbox").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_folder("u", "Nope/child").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.create_folder("u", "a//b").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_folder("ghost", "X").await,
        Err(StoreError::NotFound(_))
    ));
    store
        .deliver(
            Arc::from(&b"x"[..]),
            0,
            vec![Target {
                folder: FolderRef::Id(sub.id),
                flags: vec![],
                properties: Vec::new(),
            }],
        )
        .await
        .unwrap();
    assert!(
        matches!(
            store.delete_folder(work.id).await,
            Err(StoreError::Conflict(_))
        ),
        "has a child"
    );
    let inbox_f = folder(&store, "u", FolderKind::Inbox).await;
    assert!(matches!(
        store.delete_folder(inbox_f.id).await,
        Err(StoreError::Conflict(_))
    ));
    store.delete_folder(sub.id).await.unwrap();
    store.delete_folder(work.id).await.unwrap();
    assert_eq!(store.quota("u").await.unwrap().used, 0);
    // Re-creating a name gives a new UIDVALIDITY.
    let again = store.create_folder("u", "Work").await.unwrap();
    assert!(again.uidvalidity > work.uidvalidity);
}

pub async fn rename_moves_subfolders_and_keeps_uidvalidity(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let work = store.create_folder("u", "Work").await.unwrap();
    let sub = store.create_folder("u", "Work/2026").await.unwrap();
    let other = store.create_folder("u", "Workshop").await.unwrap();
    store.create_folder("u", "Play").await.unwrap();
    deliver_to(&store, sub.id, b"hello", &[]).await;
    let seq_before = store
        .changes_since("u", 0, 1000)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;
    let mut rx = store.watch("u");
    rx.borrow_and_update();
    store.rename_folder(work.id, "Jobs/Old").await.unwrap();
    assert!(rx.has_changed().unwrap());
    let names: Vec<(String, i64, u32)> = store
        .folders("u")
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.kind.is_none())
        .map(|f| (f.name, f.id, f.uidvalidity))
        .collect();
    let jobs = names
        .iter()
        .find(|n| n.0 == "Jobs")
        .expect("parent created");
    assert_eq!(
        names
            .iter()
            .filter(|n| n.0 != "Jobs")
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            ("Jobs/Old".to_string(), work.id, work.uidvalidity),
            ("Jobs/Old/2026".to_string(), sub.id, sub.uidvalidity),
            ("Play".to_string(), names[3].1, names[3].2),
            ("Workshop".to_string(), other.id, other.uidvalidity),
        ]
    );
    assert_eq!(store.messages(sub.id, 1, 10).await.unwrap().len(), 1);
    let changes: Vec<_> = store
        .changes_since("u", seq_before, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.folder_id))
        .collect();
    assert_eq!(
        changes,
        vec![
            (ChangeKind::FolderCreated, jobs.1),
            (ChangeKind::FolderRenamed, work.id),
            (ChangeKind::FolderRenamed, sub.id),
        ]
    );
    // Clashes and nonsense.
    for bad in ["Play", "Jobs/Old/2026/x", "inbox", "a//b", ""] {
        let e = store.rename_folder(work.id, bad).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{bad}: {e}");
    }
    let play = names.iter().find(|n| n.0 == "Play").unwrap().1;
    store.create_folder("u", "Play/Jobs").await.unwrap();
    // The folder itself is free but a renamed subfolder would clash.
    store.create_folder("u", "X").await.unwrap();
    store.create_folder("u", "X/Old").await.unwrap();
    store.create_folder("u", "Y").await.unwrap();
    store.create_folder("u", "Y/Old").await.unwrap();
    let y = store
        .folders("u")
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.name == "Y")
        .unwrap();
    store.rename_folder(play, "Z").await.unwrap();
    let e = store.rename_folder(y.id, "X").await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert!(matches!(
        store.rename_folder(999_999, "Q").await,
        Err(StoreError::NotFound(_))
    ));
    let names: Vec<String> = store
        .folders("u")
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert!(names.contains(&"Z/Jobs".to_string()), "{names:?}");
    assert!(names.contains(&"Y/Old".to_string()), "{names:?}");
}

pub async fn renaming_inbox_moves_its_messages_to_a_new_folder(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let i = folder(&store, "u", FolderKind::Inbox).await;
    store.create_folder("u", "INBOX/Sub").await.unwrap();
    deliver_to(&store, i.id, b"m1", &["\\Seen"]).await;
    deliver_to(&store, i.id, b"m2", &[]).await;
    store.rename_folder(i.id, "Old Mail").await.unwrap();
    // INBOX may even be renamed below itself (its subfolders do not move).
    store.rename_folder(i.id, "INBOX/Sub/Older").await.unwrap();
    let folders = store.folders("u").await.unwrap();
    let inbox_after = folders
        .iter()
        .find(|f| f.kind == Some(FolderKind::Inbox))
        .unwrap();
    assert_eq!(inbox_after.name, "INBOX");
    assert_eq!(inbox_after.id, i.id);
    assert_eq!(inbox_after.uidvalidity, i.uidvalidity);
    assert_eq!(inbox_after.messages, 0);
    assert!(folders.iter().any(|f| f.name == "INBOX/Sub"));
    let older = folders
        .iter()
        .find(|f| f.name == "INBOX/Sub/Older")
        .unwrap();
    assert_eq!(older.messages, 0, "INBOX was already empty");
    let old = folders.iter().find(|f| f.name == "Old Mail").unwrap();
    assert_eq!(old.kind, None);
    assert_eq!((old.messages, old.unseen), (2, 1));
    assert_eq!(store.quota("u").await.unwrap().used, 4);
    let kinds: Vec<_> = store
        .changes_since("u", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.folder_id == old.id))
        .collect();
    assert_eq!(
        kinds[3..],
        [
            (ChangeKind::FolderCreated, true),
            (ChangeKind::Created, true),
            (ChangeKind::Created, true),
            (ChangeKind::Expunged, false),
            (ChangeKind::Expunged, false),
            (ChangeKind::FolderCreated, false),
        ]
    );
    // New mail still goes to INBOX, with fresh UIDs.
    assert_eq!(deliver_to(&store, i.id, b"m3", &[]).await, 3);
    assert!(matches!(
        store.rename_folder(i.id, "Old Mail").await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn subscription_is_stored(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let f = store.create_folder("u", "News").await.unwrap();
    assert!(f.subscribed);
    store.set_subscribed(f.id, false).await.unwrap();
    let again = store.folders("u").await.unwrap();
    assert!(!again.iter().find(|x| x.id == f.id).unwrap().subscribed);
    store.set_subscribed(f.id, true).await.unwrap();
    let again = store.folders("u").await.unwrap();
    assert!(again.iter().find(|x| x.id == f.id).unwrap().subscribed);
    assert!(matches!(
        store.set_subscribed(999_999, true).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn folders_keep_the_class_they_were_created_with(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let mail = store.create_folder("u", "Mail").await.unwrap();
    let people = store
        .create_folder_of_class("u", "People", "IPF.Contact")
        .await
        .unwrap();
    let plain = store
        .create_folder_of_class("u", "Plain", "")
        .await
        .unwrap();
    let all = store.folders("u").await.unwrap();
    let class = |id: i64| {
        all.iter()
            .find(|f| f.id == id)
            .unwrap()
            .folder_class
            .clone()
    };
    assert_eq!(class(mail.id), "IPF.Note");
    assert_eq!(class(people.id), "IPF.Contact");
    assert_eq!(class(plain.id), "");
}
