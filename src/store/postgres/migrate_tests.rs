//! `mailgate migrate` end to end: an SQLite store filled through the `Store`
//! trait is copied into PostgreSQL, then everything a client reads is compared
//! through `Store` on both backends, and the refusals are checked. The tests
//! that need a server skip without `MAILGATE_TEST_POSTGRES` (tests/pg.sh).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::testing::{available, create_database};
use super::{PgStore, Settings};
use crate::directory::{DirectoryBackend, Record, RecordKind, RecordOp};
use crate::store::conformance::named;
use crate::store::migrate::{self, MailRow, MailboxRow, MigrateError};
use crate::store::queue::{NewOutbound, NewRecipient, OutboundQueue};
use crate::store::sqlite::export;
use crate::store::{
    Backend, CacheConsumer, FlagOp, FolderKind, FolderRef, ItemChange, OutboxEvent, Store, Target,
};

fn target(folder: FolderRef, flags: &[&str], properties: &[(&str, &[u8])]) -> Target {
    Target {
        folder,
        flags: flags.iter().map(|f| f.to_string()).collect(),
        properties: properties
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect(),
    }
}

fn inbox(mailbox: &str) -> FolderRef {
    FolderRef::Kind(mailbox.into(), FolderKind::Inbox)
}

async fn folder_id(store: &Arc<dyn Backend>, mailbox: &str, name: &str) -> i64 {
    named(store, mailbox, name).await.id
}

const MAILBOXES: &[&str] = &["alice", "bob", "carol"];

/// Fills a store through `Store` with what a busy mailbox goes through.
async fn fill(store: &Arc<dyn Backend>) {
    for m in MAILBOXES {
        store.create_mailbox(m, 10 << 20).await.unwrap();
    }
    // One body delivered to every Inbox, stored once.
    let shared: Arc<[u8]> = Arc::from(&b"Subject: to all\r\n\r\nhello everyone\r\n"[..]);
    let all: Vec<Target> = MAILBOXES
        .iter()
        .map(|m| target(inbox(m), &[], &[]))
        .collect();
    let stored = store.deliver(shared, 1_700_000_000_000, all).await.unwrap();
    assert!(stored.iter().all(|s| s.is_ok()));
    for i in 0..12 {
        let body: Arc<[u8]> = Arc::from(format!("Subject: n{i}\r\n\r\nbody {i}\r\n").as_bytes());
        let flags: &[&str] = if i % 3 == 0 { &["\\Seen"] } else { &[] };
        let props: &[(&str, &[u8])] = if i == 4 {
            &[("reminder", b"\x01\x02")]
        } else {
            &[]
        };
        store
            .deliver(
                body,
                1_700_000_000_000 + i,
                vec![target(inbox("alice"), flags, props)],
            )
            .await
            .unwrap();
    }
    let a_inbox = folder_id(store, "alice", "INBOX").await;
    store.create_folder("alice", "Work").await.unwrap();
    store.create_folder("alice", "Work/Sub").await.unwrap();
    store.create_folder("alice", "Gone").await.unwrap();
    store
        .create_folder_of_class("alice", "Friends", "IPF.Contact")
        .await
        .unwrap();
    store.create_folder("bob", "Lists").await.unwrap();
    let work = folder_id(store, "alice", "Work").await;
    let sub = folder_id(store, "alice", "Work/Sub").await;
    let lists = folder_id(store, "bob", "Lists").await;
    // CONDSTORE: one STORE succeeds, one is refused as modified.
    let done = store
        .store_flags(
            a_inbox,
            vec![2, 3, 4],
            FlagOp::Add,
            vec!["$Important".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(done.updated.len(), 3);
    let refused = store
        .store_flags(
            a_inbox,
            vec![2],
            FlagOp::Add,
            vec!["\\Flagged".into()],
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(refused.modified, vec![2]);
    store
        .store_flags(
            a_inbox,
            vec![5, 6],
            FlagOp::Add,
            vec!["\\Seen".into()],
            None,
        )
        .await
        .unwrap();
    store
        .change_item(
            a_inbox,
            7,
            ItemChange {
                flags: Some(vec!["\\Flagged".into()]),
                set: vec![("category".into(), b"blue".to_vec())],
                remove: vec![],
            },
            None,
        )
        .await
        .unwrap();
    // Copies (sharing bodies), a move within and one across mailboxes.
    store
        .copy_messages(a_inbox, vec![1, 2, 3, 5], work, false)
        .await
        .unwrap()
        .unwrap();
    store
        .copy_messages(a_inbox, vec![8, 9], sub, true)
        .await
        .unwrap()
        .unwrap();
    store
        .copy_messages(a_inbox, vec![10, 11], lists, true)
        .await
        .unwrap()
        .unwrap();
    // Expunges (QRESYNC's VANISHED reads them) and a deleted folder.
    store.expunge(a_inbox, vec![12, 13]).await.unwrap();
    store.expunge(work, vec![1]).await.unwrap();
    let gone = folder_id(store, "alice", "Gone").await;
    store.delete_folder(gone).await.unwrap();
    // A rename keeps ids and UIDVALIDITY and moves the subfolder.
    store.rename_folder(work, "Projects").await.unwrap();
    store.set_subscribed(lists, false).await.unwrap();
    let body_id = store.messages(a_inbox, 1, 1).await.unwrap()[0].body_id;
    store
        .put_body_cache(body_id, CacheConsumer::ImapStructure, b"structure".to_vec())
        .await
        .unwrap();
    // A replaced draft keeps its item id under a new UID.
    let drafts = folder_id(store, "carol", "Drafts").await;
    let draft = store
        .append_all(
            drafts,
            vec![crate::store::NewMessage {
                body: Arc::from(&b"Subject: draft\r\n\r\nv1\r\n"[..]),
                internal_date: 1_700_000_100_000,
                flags: vec!["\\Draft".into()],
                properties: vec![("x".into(), b"1".to_vec())],
            }],
        )
        .await
        .unwrap()
        .unwrap();
    store
        .replace_message(
            drafts,
            draft[0].uid,
            crate::store::NewMessage {
                body: Arc::from(&b"Subject: draft\r\n\r\nv2\r\n"[..]),
                internal_date: 1_700_000_200_000,
                flags: vec!["\\Draft".into()],
                properties: vec![("x".into(), b"2".to_vec())],
            },
        )
        .await
        .unwrap()
        .unwrap();
}

/// Waits until no connection of this process holds the store file (the
/// writer thread closes its connection after the store is dropped).
async fn wait_closed(path: &Path) {
    for _ in 0..100 {
        if !export::in_use(path).unwrap().0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} still open", path.display());
}

fn from(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

async fn pg(url: &str) -> PgStore {
    PgStore::open(&Settings {
        url: url.to_string(),
        pool_size: 4,
    })
    .await
    .unwrap()
}

/// Everything `Store` reads of one mailbox, for comparing two backends.
async fn snapshot(store: &dyn Backend, mailbox: &str) -> String {
    let mut out = Vec::new();
    let folders = store.folders(mailbox).await.unwrap();
    out.push(format!("{folders:#?}"));
    out.push(format!("{:?}", store.quota(mailbox).await.unwrap()));
    out.push(format!(
        "latest {}",
        store.latest_change(mailbox).await.unwrap()
    ));
    out.push(format!(
        "{:#?}",
        store.changes_since(mailbox, 0, 100_000).await.unwrap()
    ));
    for f in &folders {
        let metas = store.messages(f.id, 1, u32::MAX).await.unwrap();
        out.push(format!("{}: {metas:#?}", f.name));
        out.push(format!(
            "newest {:?}",
            store.messages_newest_first(f.id, 0, 3).await.unwrap()
        ));
        for modseq in [0, f.highest_modseq / 2] {
            out.push(format!(
                "expunged since {modseq}: {:?}",
                store.expunged_since(mailbox, f.id, modseq).await.unwrap()
            ));
        }
        let ids: Vec<String> = metas.iter().map(|m| m.item_id.clone()).collect();
        let props: std::collections::BTreeMap<_, _> = store
            .properties(ids.clone())
            .await
            .unwrap()
            .into_iter()
            .collect();
        out.push(format!("props {props:?}"));
        out.push(format!(
            "by item id {:?}",
            store.messages_by_item_ids(ids).await.unwrap()
        ));
        out.push(format!(
            "folder by item id {:?}",
            store.folder_by_item_id(&f.item_id).await.unwrap()
        ));
        let bodies = store
            .bodies(metas.iter().map(|m| m.body_id).collect())
            .await
            .unwrap();
        out.push(format!("bodies {bodies:?}"));
        for m in &metas {
            out.push(format!(
                "cache {} {:?}",
                m.body_id,
                store
                    .body_cache(m.body_id, CacheConsumer::ImapStructure)
                    .await
                    .unwrap()
            ));
        }
    }
    out.join("\n")
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store.sqlite")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_migrates_with_every_identity_and_a_second_run_is_refused() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    {
        let source = crate::store::open_embedded(&path).unwrap();
        fill(&source).await;
    }
    wait_closed(&path).await;
    let before = file_bytes(&path);
    let url = create_database(dir.path()).await;

    let report = migrate::run(&from(&path), &url).await.unwrap();
    let text = report.lines.join("\n");
    assert!(text.contains("mail: 3 mailboxes"), "{text}");
    assert!(text.contains("verified"), "{text}");
    assert_eq!(file_bytes(&path), before, "the source file is not written");

    let source = crate::store::open_embedded(&path).unwrap();
    let target: Arc<dyn Backend> = Arc::new(pg(&url).await);
    for m in MAILBOXES {
        let (a, b) = (
            snapshot(source.as_ref(), m).await,
            snapshot(target.as_ref(), m).await,
        );
        assert!(a.contains("INBOX"));
        assert_eq!(a, b, "{m} reads the same from both stores");
    }
    // The snapshots hold what the test claims to compare.
    let alice = snapshot(target.as_ref(), "alice").await;
    assert!(alice.contains("\"Projects/Sub\""), "the renamed subtree");
    assert!(alice.contains("IPF.Contact"));
    assert!(
        alice.contains("expunged since 0: [8, 9, 10, 11, 12, 13]"),
        "QRESYNC expunges"
    );
    assert!(alice.contains("FolderRenamed") && alice.contains("FolderDeleted"));
    assert!(alice.contains("ReadFlag"), "a \\Seen-only change");
    assert!(alice.contains("\"category\""), "item properties");
    assert!(
        alice.contains("Some([115, 116, 114"),
        "the body cache (\"structure\")"
    );
    let carol = snapshot(target.as_ref(), "carol").await;
    assert!(
        carol.contains("\"x\", [50]"),
        "the replaced draft's properties"
    );

    // The target carries on where the source stopped: counters continue, ids
    // are never given twice.
    let inbox_id = folder_id(&target, "alice", "INBOX").await;
    let old = target
        .folders("alice")
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.id == inbox_id)
        .unwrap();
    let latest = target.latest_change("alice").await.unwrap();
    let max_body = {
        let mut max = 0;
        for mb in MAILBOXES {
            for f in target.folders(mb).await.unwrap() {
                for m in target.messages(f.id, 1, u32::MAX).await.unwrap() {
                    max = max.max(m.body_id);
                }
            }
        }
        max
    };
    let stored = target
        .deliver(
            Arc::from(&b"Subject: after\r\n\r\nx\r\n"[..]),
            1,
            vec![target_to(inbox("alice"))],
        )
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(stored.uid, old.uidnext);
    assert_eq!(stored.uidvalidity, old.uidvalidity);
    assert_eq!(stored.modseq, old.highest_modseq + 1);
    assert!(target.latest_change("alice").await.unwrap() > latest);
    let meta = target
        .messages(inbox_id, stored.uid, stored.uid)
        .await
        .unwrap();
    assert!(
        meta[0].body_id > max_body,
        "a new body id above every copied one"
    );
    let every_folder: Vec<i64> = {
        let mut ids = Vec::new();
        for mb in MAILBOXES {
            ids.extend(target.folders(mb).await.unwrap().iter().map(|f| f.id));
        }
        ids
    };
    let new = target.create_folder("alice", "New").await.unwrap();
    assert!(every_folder.iter().all(|&id| new.id > id));
    assert!(
        new.uidvalidity > old.uidvalidity,
        "the UIDVALIDITY counter was copied"
    );

    // Running it again is refused before anything is written.
    drop(source);
    wait_closed(&path).await;
    let again = migrate::run(&from(&path), &url).await.unwrap_err();
    assert!(
        matches!(&again, MigrateError::Refused(m) if m.contains("already holds data")),
        "{again}"
    );
}

fn target_to(folder: FolderRef) -> Target {
    target(folder, &[], &[])
}

/// A source with directory records, access rules, tags, a queued message and
/// outbox events: every part is copied and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_parts_are_copied() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    {
        let source = crate::store::open_embedded(&path).unwrap();
        source.create_mailbox("alice", 1 << 20).await.unwrap();
        let s = source.clone();
        tokio::task::spawn_blocking(move || {
            s.apply(vec![RecordOp::Put(Record {
                kind: RecordKind::Organization,
                id: "m-1".into(),
                org_id: "m-1".into(),
                json: "{}".into(),
            })])
            .unwrap();
            crate::access::AccessBackend::save(s.as_ref(), "m-1", "{\"rules\":[]}").unwrap();
            assert!(
                s.tag_blocking("arn:x", vec![("k".into(), "v".into())], 50)
                    .unwrap()
            );
        })
        .await
        .unwrap();
        source
            .enqueue(
                NewOutbound {
                    sender: "alice@example.test".into(),
                    on_behalf_of: None,
                    from_header: "alice@example.test".into(),
                    message_id: "m@x".into(),
                    owner_org: "m-1".into(),
                    owner_mailbox: "alice".into(),
                    trace_id: "t".into(),
                    envelope_id: None,
                    recipients: vec![NewRecipient {
                        address: "bob@remote.test".into(),
                        notify_failure: true,
                    }],
                    body: Arc::from(&b"Subject: out\r\n\r\nx\r\n"[..]),
                },
                5,
            )
            .await
            .unwrap();
        source
            .outbox_append(vec![OutboxEvent {
                kind: "ORGANIZATION_CREATED".into(),
                org: "m-1".into(),
                line: "{}".into(),
            }])
            .await
            .unwrap();
    }
    wait_closed(&path).await;
    let url = create_database(dir.path()).await;
    let target = pg(&url).await;
    let report = migrate::run(&from(&path), &url)
        .await
        .unwrap_or_else(|e| panic!("not copied: {e}"));
    assert_eq!(DirectoryBackend::load_all(&target).unwrap().len(), 1);
    assert_eq!(target.queued_recipients().await.unwrap(), 1);
    assert!(report.lines.join("\n").contains("verified"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_and_unfit_sources_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let nowhere = "postgres://mg@127.0.0.1:1/mail";

    let e = migrate::run(&from(&path), nowhere).await.unwrap_err();
    assert!(
        matches!(&e, MigrateError::Refused(m) if m.contains("no such store file")),
        "{e}"
    );

    let source = crate::store::open_embedded(&path).unwrap();
    source.create_mailbox("alice", 1 << 20).await.unwrap();
    let e = migrate::run(&from(&path), nowhere).await.unwrap_err();
    assert!(
        matches!(&e, MigrateError::Refused(m) if m.contains("stop the daemon")),
        "a store still open is refused: {e}"
    );
    drop(source);
    wait_closed(&path).await;

    let e = migrate::run(&from(&path), nowhere).await.unwrap_err();
    assert!(matches!(e, MigrateError::Unavailable(_)), "{e}");

    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, b"not a database, not even close to one").unwrap();
    let e = migrate::run(&from(&garbage), nowhere).await.unwrap_err();
    assert!(matches!(e, MigrateError::Refused(_)), "{e}");
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        b"not a database, not even close to one"
    );

    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
    }
    let e = migrate::run(&from(&path), nowhere).await.unwrap_err();
    assert!(
        matches!(&e, MigrateError::Refused(m) if m.contains("schema version 3")),
        "{e}"
    );

    let e = migrate::run("data/store.sqlite", nowhere)
        .await
        .unwrap_err();
    assert!(matches!(e, MigrateError::Usage(_)), "{e}");
    let e = migrate::run(&from(&path), "mysql://x/y").await.unwrap_err();
    assert!(matches!(e, MigrateError::Usage(_)), "{e}");
}

/// A store left by a crash (its commits still in the WAL, its `-shm` with no
/// process behind it) is read with every commit, and its files are not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_store_is_read_with_the_commits_in_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let crashed = dir.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    let image = store_path(&crashed);
    let source = crate::store::open_embedded(&path).unwrap();
    fill(&source).await;
    // The files as a kill -9 leaves them: copied while the store is open.
    for suffix in ["", "-wal", "-shm"] {
        let name = |p: &Path| PathBuf::from(format!("{}{suffix}", p.display()));
        std::fs::copy(name(&path), name(&image)).unwrap();
    }
    assert!(
        std::fs::metadata(format!("{}-wal", image.display()))
            .unwrap()
            .len()
            > 0,
        "the commits are in the WAL"
    );
    let main_file = file_bytes(&image);
    let expected = {
        let inbox = folder_id(&source, "alice", "INBOX").await;
        source.messages(inbox, 1, u32::MAX).await.unwrap().len() as u64
    };
    let checks = tokio::task::spawn_blocking(move || {
        let e = export::Export::open(&image).unwrap();
        e.folder_checks().unwrap()
    })
    .await
    .unwrap();
    let inbox = checks
        .iter()
        .find(|f| f.mailbox == "alice" && f.name == "INBOX")
        .expect("the WAL's folders are read");
    assert_eq!(inbox.messages, expected);
    assert!(expected > 0);
    assert_eq!(
        file_bytes(&store_path(&crashed)),
        main_file,
        "no checkpoint into the store file"
    );
}

/// The rows of one empty mailbox.
fn one_mailbox() -> Vec<MailRow> {
    vec![MailRow::Mailbox(MailboxRow {
        id: "alice".into(),
        quota_bytes: 1,
        used_bytes: 0,
        next_uidvalidity: 1,
        created_ms: 0,
        pruned_seq: 0,
    })]
}

/// A copy whose source stops before its end (no end-of-rows batch) commits
/// nothing: the target stays empty and a migration can run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_cut_short_leaves_the_target_empty() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let target = pg(&url).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(one_mailbox()).await.unwrap();
    drop(tx);
    let e = super::import::copy_mail(&target, rx, 1).await.unwrap_err();
    assert!(e.to_string().contains("ended before"), "{e}");
    assert!(
        super::import::tables_holding_data(&target)
            .await
            .unwrap()
            .is_empty()
    );
    // With the end marker the same rows commit.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(one_mailbox()).await.unwrap();
    tx.send(vec![]).await.unwrap();
    drop(tx);
    super::import::copy_mail(&target, rx, 1).await.unwrap();
    assert_eq!(target.quota("alice").await.unwrap().limit, 1);
}

/// A pruned feed migrates with its horizons: a position or MODSEQ below them
/// is refused on PostgreSQL as on SQLite (a copy without them would hand it a
/// feed with a hole), one above them reads the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_horizons_are_copied() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let (inbox, horizon) = {
        let source = crate::store::open_embedded(&path).unwrap();
        source.create_mailbox("alice", 1 << 20).await.unwrap();
        for i in 0..4u8 {
            source
                .deliver(
                    Arc::from(&[b'a' + i][..]),
                    0,
                    vec![target(inbox("alice"), &[], &[])],
                )
                .await
                .unwrap();
        }
        let inbox = folder_id(&source, "alice", "INBOX").await;
        source.expunge(inbox, vec![1, 2]).await.unwrap();
        let later = crate::clock::now_ms() + 3_600_000;
        assert!(source.prune_feed("alice", later, 1, 100).await.unwrap() > 0);
        let kept = source.changes_since("alice", 0, 10).await;
        assert!(matches!(kept, Err(crate::store::StoreError::FeedPruned)));
        let latest = source.latest_change("alice").await.unwrap();
        (inbox, latest - 1)
    };
    wait_closed(&path).await;
    let url = create_database(dir.path()).await;
    migrate::run(&from(&path), &url).await.unwrap();
    let target = pg(&url).await;
    assert!(matches!(
        target.changes_since("alice", 0, 10).await,
        Err(crate::store::StoreError::FeedPruned)
    ));
    assert_eq!(
        target
            .changes_since("alice", horizon, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        target.expunged_since("alice", inbox, 0).await,
        Err(crate::store::StoreError::FeedPruned)
    ));
}
