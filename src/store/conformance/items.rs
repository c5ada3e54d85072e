//! Item ids and ChangeKeys (EWS ItemId/FolderId and ChangeKey): lookup by item id,
//! and keys that change with every modification of their item or folder.

use super::*;
use crate::store::*;

pub async fn messages_and_folders_are_found_by_item_id(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let inbox_f = folder(&store, "u", FolderKind::Inbox).await;
    let archive = folder(&store, "u", FolderKind::Archive).await;
    deliver_to(&store, inbox_f.id, b"one", &["\\Seen"]).await;
    let meta = store.messages(inbox_f.id, 1, 1).await.unwrap().remove(0);
    let (f, m) = store.message_by_item_id(&meta.item_id).await.unwrap();
    assert_eq!(f, folder(&store, "u", FolderKind::Inbox).await);
    assert_eq!(m, meta);
    assert_eq!(store.body(m.body_id).await.unwrap(), b"one");
    assert_eq!(
        store.folder_by_item_id(&archive.item_id).await.unwrap(),
        archive
    );
    // A move makes a new item: the old id is gone, the new one is in the target.
    store
        .copy_messages(inbox_f.id, vec![1], archive.id, true)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store.message_by_item_id(&meta.item_id).await,
        Err(StoreError::NotFound(_))
    ));
    let moved = store.messages(archive.id, 1, 1).await.unwrap().remove(0);
    let (f, m) = store.message_by_item_id(&moved.item_id).await.unwrap();
    assert_eq!(
        (f.id, m.uid, m.flags),
        (archive.id, 1, vec!["\\Seen".into()])
    );
    // Renamed folders keep their id; deleted ones are gone.
    let work = store.create_folder("u", "Work").await.unwrap();
    store.rename_folder(work.id, "Jobs").await.unwrap();
    let found = store.folder_by_item_id(&work.item_id).await.unwrap();
    assert_eq!((found.id, found.name.as_str()), (work.id, "Jobs"));
    store.delete_folder(work.id).await.unwrap();
    assert!(matches!(
        store.folder_by_item_id(&work.item_id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.message_by_item_id("no-such-item").await,
        Err(StoreError::NotFound(_))
    ));
    // In batches: answers in the order asked, `None` for what is gone.
    deliver_to(&store, inbox_f.id, b"two", &[]).await;
    let two = store.messages(inbox_f.id, 2, 2).await.unwrap().remove(0);
    let asked = vec![
        two.item_id.clone(),
        meta.item_id.clone(),
        moved.item_id.clone(),
        two.item_id.clone(),
    ];
    let found = store.messages_by_item_ids(asked).await.unwrap();
    let got: Vec<Option<(i64, u32)>> = found
        .iter()
        .map(|f| f.as_ref().map(|(f, m)| (f.id, m.uid)))
        .collect();
    assert_eq!(
        got,
        vec![
            Some((inbox_f.id, 2)),
            None,
            Some((archive.id, 1)),
            Some((inbox_f.id, 2))
        ]
    );
    assert_eq!(
        found[2].as_ref().unwrap().0,
        folder(&store, "u", FolderKind::Archive).await
    );
    let bodies = store
        .bodies(vec![two.body_id, -1, moved.body_id])
        .await
        .unwrap();
    assert_eq!(
        bodies,
        vec![Some(b"two".to_vec()), None, Some(b"one".to_vec())]
    );
    assert!(store.bodies(vec![]).await.unwrap().is_empty());
}

pub async fn a_message_change_key_changes_on_flags_copy_and_move(ctx: Ctx) {
    let store = ctx.store.clone();
    let Life {
        inbox: inbox_f,
        delivered,
        flagged,
        copy,
        moved,
        ..
    } = live(&store).await;
    let key = |m: &MessageMeta| m.change_key();
    // Reading does not change it.
    let again = store.messages(inbox_f.id, 1, 1).await.unwrap().remove(0);
    assert_eq!(key(&again), key(&flagged));
    assert_ne!(key(&flagged), key(&delivered), "a flag change");
    assert_eq!(flagged.item_id, delivered.item_id);
    assert_ne!(copy.item_id, flagged.item_id, "a copy is a new item");
    assert_ne!(key(&copy), key(&flagged), "with a new key");
    assert_ne!(moved.item_id, copy.item_id, "a move is a new item");
    for old in [&delivered, &flagged, &copy] {
        assert_ne!(key(&moved), key(old), "with a new key");
    }
}

pub async fn a_folder_change_key_changes_with_its_contents_and_properties(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let work = store.create_folder("u", "Work").await.unwrap();
    let other = store.create_folder("u", "Other").await.unwrap();
    let mut keys = vec![work.change_key.clone()];
    deliver_to(&store, work.id, b"one", &[]).await;
    changed(&mut keys, named(&store, "u", "Work").await, "a delivery");
    store
        .copy_messages(other.id, vec![], work.id, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &named(&store, "u", "Work").await.change_key,
        keys.last().unwrap(),
        "nothing copied, nothing changed"
    );
    deliver_to(&store, other.id, b"two", &[]).await;
    store
        .copy_messages(other.id, vec![1], work.id, false)
        .await
        .unwrap()
        .unwrap();
    changed(&mut keys, named(&store, "u", "Work").await, "a copy in");
    // Its unread count is one of its properties (EWS UnreadCount).
    store
        .store_flags(work.id, vec![1], FlagOp::Add, vec!["\\Seen".into()], None)
        .await
        .unwrap();
    changed(&mut keys, named(&store, "u", "Work").await, "a flag change");
    store
        .copy_messages(work.id, vec![2], other.id, true)
        .await
        .unwrap()
        .unwrap();
    changed(&mut keys, named(&store, "u", "Work").await, "a move out");
    store.expunge(work.id, vec![1]).await.unwrap();
    changed(&mut keys, named(&store, "u", "Work").await, "an expunge");
    store.rename_folder(work.id, "Jobs").await.unwrap();
    changed(&mut keys, named(&store, "u", "Jobs").await, "a rename");
    store.set_subscribed(work.id, false).await.unwrap();
    changed(&mut keys, named(&store, "u", "Jobs").await, "unsubscribing");
    // Its set of subfolders is one of its properties (EWS ChildFolderCount).
    let child = store.create_folder("u", "Jobs/2026").await.unwrap();
    changed(
        &mut keys,
        named(&store, "u", "Jobs").await,
        "a child created",
    );
    store.rename_folder(child.id, "Later").await.unwrap();
    changed(
        &mut keys,
        named(&store, "u", "Jobs").await,
        "a child moved away",
    );
    let later = named(&store, "u", "Later").await;
    assert_ne!(later.change_key, child.change_key, "the renamed child");
    store.rename_folder(child.id, "Jobs/Back").await.unwrap();
    changed(
        &mut keys,
        named(&store, "u", "Jobs").await,
        "a child moved in",
    );
    store.delete_folder(child.id).await.unwrap();
    changed(
        &mut keys,
        named(&store, "u", "Jobs").await,
        "a child deleted",
    );
    let before = named(&store, "u", "Other").await;
    assert_eq!(
        before.change_key,
        named(&store, "u", "Other").await.change_key,
        "reading does not change it"
    );
    // A folder's key is its own: another folder with the same history differs.
    let a = store.create_folder("u", "A").await.unwrap();
    let b = store.create_folder("u", "B").await.unwrap();
    assert_ne!(a.change_key, b.change_key);
}

/// Asserts that `f`'s key is new, and remembers it.
fn changed(keys: &mut Vec<String>, f: Folder, why: &str) {
    assert!(!keys.contains(&f.change_key), "{why}: {keys:?}");
    keys.push(f.change_key);
}

pub async fn a_replaced_message_keeps_its_item_id_under_a_new_uid(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let inbox = store
        .folders("u")
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.kind == Some(FolderKind::Inbox))
        .unwrap();
    let first = NewMessage {
        body: std::sync::Arc::from(&b"Subject: one\r\n\r\n1"[..]),
        internal_date: 5,
        flags: vec!["\\Draft".into()],
        properties: Vec::new(),
    };
    let stored = store
        .append_all(inbox.id, vec![first])
        .await
        .unwrap()
        .unwrap()
        .remove(0);
    let before = store.latest_change("u").await.unwrap();
    let second = NewMessage {
        body: std::sync::Arc::from(&b"Subject: two\r\n\r\n22"[..]),
        internal_date: 6,
        flags: vec!["\\Draft".into(), "\\Seen".into()],
        properties: Vec::new(),
    };
    let replaced = store
        .replace_message(inbox.id, stored.uid, second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replaced.item_id, stored.item_id, "the item keeps its id");
    assert!(replaced.uid > stored.uid, "under a new UID");
    let (folder, meta) = store.message_by_item_id(&stored.item_id).await.unwrap();
    assert_eq!((folder.id, meta.uid), (inbox.id, replaced.uid));
    assert_eq!(
        store.body(meta.body_id).await.unwrap(),
        b"Subject: two\r\n\r\n22"
    );
    assert!(
        store
            .messages(inbox.id, stored.uid, stored.uid)
            .await
            .unwrap()
            .is_empty()
    );
    let feed = store.changes_since("u", before, 10).await.unwrap();
    let kinds: Vec<(ChangeKind, &str)> =
        feed.iter().map(|c| (c.kind, c.item_id.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::Expunged, stored.item_id.as_str()),
            (ChangeKind::Created, stored.item_id.as_str())
        ]
    );
    assert!(matches!(
        store
            .replace_message(
                inbox.id,
                stored.uid,
                NewMessage {
                    body: std::sync::Arc::from(&b"x"[..]),
                    internal_date: 0,
                    flags: vec![],
                    properties: Vec::new(),
                }
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// Item properties: stored with an appended message, changed with its flags in one
/// write (new MODSEQ, a feed entry, conditional on UNCHANGEDSINCE), carried by
/// copies and moves, replaced with the message, and gone with the item.
pub async fn item_properties_live_and_die_with_their_item(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let inbox = folder(&store, "u", FolderKind::Inbox).await;
    let archive = folder(&store, "u", FolderKind::Archive).await;
    let prop = |n: &str, v: &str| (n.to_string(), v.as_bytes().to_vec());
    let stored = store
        .append_all(
            inbox.id,
            vec![NewMessage {
                body: std::sync::Arc::from(&b"Subject: p\r\n\r\nx"[..]),
                internal_date: 5,
                flags: vec![],
                properties: vec![prop("b", "2"), prop("a", "1")],
            }],
        )
        .await
        .unwrap()
        .unwrap()
        .remove(0);
    let props_of = |id: &str| {
        let store = store.clone();
        let id = id.to_string();
        async move {
            store
                .properties(vec![id.clone()])
                .await
                .unwrap()
                .remove(&id)
                .unwrap_or_default()
        }
    };
    assert_eq!(
        props_of(&stored.item_id).await,
        [prop("a", "1"), prop("b", "2")]
    );
    // A delivery gives each copy its own properties (a sent copy keeps what the
    // sender set; the recipient's copy gets none).
    let sent = folder(&store, "u", FolderKind::SentItems).await;
    let copies = store
        .deliver(
            std::sync::Arc::from(&b"Subject: d\r\n\r\nx"[..]),
            6,
            vec![
                Target {
                    folder: FolderRef::Id(sent.id),
                    flags: vec![],
                    properties: vec![prop("s", "sent")],
                },
                Target {
                    folder: FolderRef::Id(sent.id),
                    flags: vec![],
                    properties: vec![],
                },
            ],
        )
        .await
        .unwrap();
    let ids: Vec<String> = copies.into_iter().map(|c| c.unwrap().item_id).collect();
    assert_eq!(props_of(&ids[0]).await, [prop("s", "sent")]);
    assert!(props_of(&ids[1]).await.is_empty());
    // A change of flags and properties is one write with a new MODSEQ.
    let before = store.latest_change("u").await.unwrap();
    let change = ItemChange {
        flags: Some(vec!["\\Seen".into()]),
        set: vec![prop("a", "one"), prop("c", "3")],
        remove: vec!["b".into()],
    };
    let out = store
        .change_item(inbox.id, stored.uid, change.clone(), Some(stored.modseq))
        .await
        .unwrap();
    assert_eq!(out.updated.len(), 1);
    assert!(out.updated[0].modseq > stored.modseq);
    let meta = store.messages(inbox.id, 1, 1).await.unwrap().remove(0);
    assert_eq!(meta.flags, ["\\Seen"]);
    assert_eq!(meta.modseq, out.updated[0].modseq);
    assert_eq!(
        props_of(&stored.item_id).await,
        [prop("a", "one"), prop("c", "3")]
    );
    let feed = store.changes_since("u", before, 10).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(
        (feed[0].kind, feed[0].item_id.as_str()),
        (ChangeKind::Flags, stored.item_id.as_str())
    );
    // The same change again changes nothing; a stale UNCHANGEDSINCE is refused.
    let again = store
        .change_item(inbox.id, stored.uid, change, None)
        .await
        .unwrap();
    assert!(again.updated.is_empty() && again.modified.is_empty());
    let stale = store
        .change_item(
            inbox.id,
            stored.uid,
            ItemChange {
                set: vec![prop("d", "4")],
                ..ItemChange::default()
            },
            Some(stored.modseq),
        )
        .await
        .unwrap();
    assert_eq!(stale.modified, [stored.uid]);
    assert_eq!(props_of(&stored.item_id).await.len(), 2, "nothing written");
    // A change of `\\Seen` alone is recorded as one (EWS ReadFlagChange).
    let before = store.latest_change("u").await.unwrap();
    store
        .store_flags(
            inbox.id,
            vec![stored.uid],
            FlagOp::Remove,
            vec!["\\Seen".into()],
            None,
        )
        .await
        .unwrap();
    store
        .change_item(
            inbox.id,
            stored.uid,
            ItemChange {
                flags: Some(vec!["\\Seen".into(), "\\Flagged".into()]),
                ..ItemChange::default()
            },
            None,
        )
        .await
        .unwrap();
    store
        .store_flags(
            inbox.id,
            vec![stored.uid],
            FlagOp::Remove,
            vec!["\\Flagged".into()],
            None,
        )
        .await
        .unwrap();
    let kinds: Vec<ChangeKind> = store
        .changes_since("u", before, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds,
        [ChangeKind::ReadFlag, ChangeKind::Flags, ChangeKind::Flags]
    );
    let meta = store.messages(inbox.id, 1, 1).await.unwrap().remove(0);
    // A property change alone also moves the MODSEQ.
    let only = store
        .change_item(
            inbox.id,
            stored.uid,
            ItemChange {
                remove: vec!["c".into()],
                ..ItemChange::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(only.updated[0].modseq > meta.modseq);
    assert_eq!(only.updated[0].flags, ["\\Seen"], "flags unchanged");
    // Copies carry them; a move takes them along; expunge removes them.
    let copied = store
        .copy_messages(inbox.id, vec![stored.uid], archive.id, false)
        .await
        .unwrap()
        .unwrap();
    let copy = store
        .messages(archive.id, copied.pairs[0].1, copied.pairs[0].1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(props_of(&copy.item_id).await, [prop("a", "one")]);
    store
        .copy_messages(inbox.id, vec![stored.uid], archive.id, true)
        .await
        .unwrap()
        .unwrap();
    assert!(
        props_of(&stored.item_id).await.is_empty(),
        "the moved source"
    );
    let moved = store.messages(archive.id, 1, u32::MAX).await.unwrap();
    assert_eq!(moved.len(), 2);
    assert_eq!(props_of(&moved[1].item_id).await, [prop("a", "one")]);
    // Replacing sets the new message's properties under the same item id.
    let replaced = store
        .replace_message(
            archive.id,
            moved[1].uid,
            NewMessage {
                body: std::sync::Arc::from(&b"Subject: q\r\n\r\ny"[..]),
                internal_date: 6,
                flags: vec![],
                properties: vec![prop("z", "26")],
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(props_of(&replaced.item_id).await, [prop("z", "26")]);
    store.expunge(archive.id, vec![replaced.uid]).await.unwrap();
    assert!(props_of(&replaced.item_id).await.is_empty());
    // Deleting a folder removes its items' properties; a gone message is NotFound.
    let work = store.create_folder("u", "Work").await.unwrap();
    store
        .copy_messages(archive.id, vec![copy.uid], work.id, false)
        .await
        .unwrap()
        .unwrap();
    let in_work = store
        .messages(work.id, 1, u32::MAX)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(props_of(&in_work.item_id).await.len(), 1);
    store.delete_folder(work.id).await.unwrap();
    assert!(props_of(&in_work.item_id).await.is_empty());
    // Through all of it, each folder's counts are those of its messages.
    for f in store.folders("u").await.unwrap() {
        let metas = store.messages(f.id, 1, u32::MAX).await.unwrap();
        let unseen = metas
            .iter()
            .filter(|m| !m.flags.iter().any(|x| x == "\\Seen"))
            .count();
        assert_eq!(
            (f.messages as usize, f.unseen as usize),
            (metas.len(), unseen),
            "{}",
            f.name
        );
    }
    assert!(matches!(
        store
            .change_item(inbox.id, stored.uid, ItemChange::default(), None)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn a_folder_is_paged_newest_first(ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let inbox_f = folder(&store, "u", FolderKind::Inbox).await;
    // Dates out of arrival order, with ties (broken by the higher UID first).
    for date in [30, 10, 30, 20, 10, 40] {
        let target = Target {
            folder: FolderRef::Id(inbox_f.id),
            flags: vec![],
            properties: Vec::new(),
        };
        store
            .deliver(std::sync::Arc::from(&b"x"[..]), date, vec![target])
            .await
            .unwrap();
    }
    let uids = |m: Vec<MessageMeta>| m.into_iter().map(|m| m.uid).collect::<Vec<_>>();
    let page = |o, l| {
        let store = store.clone();
        async move { uids(store.messages_newest_first(inbox_f.id, o, l).await.unwrap()) }
    };
    assert_eq!(page(0, 100).await, [6, 3, 1, 4, 5, 2]);
    assert_eq!(page(1, 2).await, [3, 1]);
    assert_eq!(page(5, 10).await, [2]);
    assert!(page(6, 10).await.is_empty());
    assert!(page(0, 0).await.is_empty());
}
