//! Store operations, group commit and crash consistency.

use std::sync::Arc;

use super::*;
use crate::store::{ChangeKind, FolderKind, FolderRef};

fn open_temp() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.sqlite")).unwrap());
    (dir, store)
}

fn inbox(mailbox: &str) -> Target {
    Target {
        folder: FolderRef::Kind(mailbox.into(), FolderKind::Inbox),
        flags: vec![],
    }
}

async fn folder(store: &Arc<SqliteStore>, mailbox: &str, kind: FolderKind) -> Folder {
    store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.kind == Some(kind))
        .unwrap()
}

#[tokio::test]
async fn mailbox_gets_the_default_folders_once() {
    let (_d, store) = open_temp();
    store.create_mailbox("u1", 1 << 20).await.unwrap();
    store.create_mailbox("u1", 1 << 20).await.unwrap();
    let folders = store.folders("u1").await.unwrap();
    assert_eq!(folders.len(), crate::store::DEFAULT_FOLDERS.len());
    let names: Vec<_> = folders.iter().map(|f| f.name.as_str()).collect();
    for expected in [
        "INBOX",
        "Sent Items",
        "Drafts",
        "Deleted Items",
        "Junk Email",
        "Outbox",
        "Archive",
        "Calendar",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let mut validities: Vec<_> = folders.iter().map(|f| f.uidvalidity).collect();
    validities.sort();
    validities.dedup();
    assert_eq!(
        validities.len(),
        folders.len(),
        "UIDVALIDITY is unique per folder"
    );
    assert!(folders.iter().all(|f| f.uidnext == 1 && f.messages == 0));
    assert!(matches!(
        store.folders("nobody").await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn delivery_stores_one_body_for_many_mailboxes() {
    let (_d, store) = open_temp();
    for u in ["a", "b", "c"] {
        store.create_mailbox(u, 1 << 20).await.unwrap();
    }
    let body: Arc<[u8]> = Arc::from(&b"Subject: hi\r\n\r\nhello\r\n"[..]);
    let res = store
        .deliver(
            body.clone(),
            1_700_000_000_000,
            vec![inbox("a"), inbox("b"), inbox("c")],
        )
        .await
        .unwrap();
    assert!(res.iter().all(|r| r.as_ref().is_ok_and(|s| s.uid == 1)));
    let bodies: i64 = store
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM bodies", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(bodies, 1);
    let a = folder(&store, "a", FolderKind::Inbox).await;
    assert_eq!((a.messages, a.unseen, a.uidnext), (1, 1, 2));
    let metas = store.messages(a.id, 1, u32::MAX).await.unwrap();
    assert_eq!(metas.len(), 1);
    assert_eq!(store.body(metas[0].body_id).await.unwrap(), &body[..]);
    assert_eq!(metas[0].internal_date, 1_700_000_000_000);
    assert_eq!(store.quota("b").await.unwrap().used, body.len() as u64);

    // Expunging from two mailboxes keeps the body for the third; the last one frees it.
    let b = folder(&store, "b", FolderKind::Inbox).await;
    let c = folder(&store, "c", FolderKind::Inbox).await;
    assert_eq!(store.expunge(a.id, vec![1, 99]).await.unwrap(), vec![1]);
    store.expunge(b.id, vec![1]).await.unwrap();
    assert_eq!(store.body(metas[0].body_id).await.unwrap(), &body[..]);
    store.expunge(c.id, vec![1]).await.unwrap();
    assert!(matches!(
        store.body(metas[0].body_id).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.quota("a").await.unwrap().used, 0);
}

#[tokio::test]
async fn over_quota_refuses_only_that_mailbox() {
    let (_d, store) = open_temp();
    store.create_mailbox("small", 10).await.unwrap();
    store.create_mailbox("big", 1 << 20).await.unwrap();
    let body: Arc<[u8]> = Arc::from(vec![b'x'; 100]);
    let res = store
        .deliver(body, 0, vec![inbox("small"), inbox("big"), inbox("ghost")])
        .await
        .unwrap();
    assert_eq!(res[0], Err(Refused::OverQuota));
    assert!(res[1].is_ok());
    assert_eq!(res[2], Err(Refused::NoSuchFolder));
    assert_eq!(
        store.quota("small").await.unwrap(),
        Quota { used: 0, limit: 10 }
    );
    store.set_quota("small", 1000).await.unwrap();
    let res = store
        .deliver(Arc::from(vec![b'y'; 100]), 0, vec![inbox("small")])
        .await
        .unwrap();
    assert!(res[0].is_ok());
}

#[tokio::test]
async fn refused_everywhere_leaves_no_body() {
    let (_d, store) = open_temp();
    store.create_mailbox("small", 10).await.unwrap();
    let res = store
        .deliver(Arc::from(vec![b'x'; 100]), 0, vec![inbox("small")])
        .await
        .unwrap();
    assert_eq!(res[0], Err(Refused::OverQuota));
    let bodies: i64 = store
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM bodies", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(bodies, 0);
}

#[tokio::test]
async fn flags_and_modseq_follow_condstore_rules() {
    let (_d, store) = open_temp();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    for _ in 0..3 {
        store
            .deliver(Arc::from(&b"x"[..]), 0, vec![inbox("u")])
            .await
            .unwrap();
    }
    let f = folder(&store, "u", FolderKind::Inbox).await;
    let before = f.highest_modseq;
    let out = store
        .store_flags(
            f.id,
            vec![1, 2],
            FlagOp::Add,
            vec!["\\Seen".into(), "$Label".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.updated.len(), 2);
    assert!(out.updated.iter().all(|u| u.modseq == before + 1));
    assert_eq!(
        out.updated[0].flags,
        vec!["\\Seen".to_string(), "$Label".to_string()]
    );
    // A no-op change does not bump MODSEQ.
    let out = store
        .store_flags(f.id, vec![1], FlagOp::Add, vec!["\\seen".into()], None)
        .await
        .unwrap();
    assert!(out.updated.is_empty());
    // UNCHANGEDSINCE older than the message's MODSEQ: reported as modified, untouched.
    let out = store
        .store_flags(
            f.id,
            vec![1, 3],
            FlagOp::Replace,
            vec!["\\Flagged".into()],
            Some(before),
        )
        .await
        .unwrap();
    assert_eq!(out.modified, vec![1]);
    assert_eq!(
        out.updated.iter().map(|u| u.uid).collect::<Vec<_>>(),
        vec![3]
    );
    let out = store
        .store_flags(f.id, vec![1], FlagOp::Remove, vec!["\\SEEN".into()], None)
        .await
        .unwrap();
    assert_eq!(out.updated[0].flags, vec!["$Label".to_string()]);
    let f2 = folder(&store, "u", FolderKind::Inbox).await;
    assert_eq!(f2.highest_modseq, before + 3);
    assert_eq!(f2.unseen, 2);
    let metas = store.messages(f.id, 1, 3).await.unwrap();
    assert_ne!(metas[0].change_key(), metas[1].change_key());
}

#[tokio::test]
async fn change_feed_and_watch_see_every_change() {
    let (_d, store) = open_temp();
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
        vec![ChangeKind::Created, ChangeKind::Flags, ChangeKind::Expunged]
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

#[tokio::test]
async fn user_folders_can_be_created_and_deleted() {
    let (_d, store) = open_temp();
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

#[tokio::test]
async fn a_failing_write_does_not_spoil_its_batch() {
    let (_d, store) = open_temp();
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

#[tokio::test]
async fn concurrent_writers_share_commits() {
    let (_d, store) = open_temp();
    store.create_mailbox("u", 1 << 30).await.unwrap();
    let commits_before = store
        .writer_stats()
        .commits
        .load(std::sync::atomic::Ordering::Relaxed);
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
    let f = folder(&store, "u", FolderKind::Inbox).await;
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
    let commits = store
        .writer_stats()
        .commits
        .load(std::sync::atomic::Ordering::Relaxed)
        - commits_before;
    assert!(
        commits < 100,
        "200 concurrent deliveries took {commits} commits: no group commit"
    );
}

/// The child half of the crash test: writes from many tasks and prints each
/// acknowledged UID, until the failpoint aborts the process mid-batch.
#[test]
#[ignore = "run by crash_mid_batch_keeps_acknowledged_writes as a child process"]
fn crash_child() {
    let Ok(path) = std::env::var("MAILGATE_CRASH_STORE") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = Arc::new(SqliteStore::open(std::path::Path::new(&path)).unwrap());
        store.create_mailbox("u", 1 << 40).await.unwrap();
        store.create_mailbox("v", 1 << 40).await.unwrap();
        failpoint::abort_after(300);
        let mut tasks = Vec::new();
        for w in 0..50u32 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..1000u32 {
                    let body = format!("Subject: {w}-{i}\r\n\r\n{}\r\n", "z".repeat(2000));
                    let res = s
                        .deliver(
                            Arc::from(body.into_bytes()),
                            i as i64,
                            vec![inbox("u"), inbox("v")],
                        )
                        .await
                        .unwrap();
                    let uid = res[0].as_ref().unwrap().uid;
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {uid} {w}-{i}").unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    panic!("the failpoint should have aborted the process");
}

#[test]
fn crash_mid_batch_keeps_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::sqlite::tests::crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MAILGATE_CRASH_STORE", &path)
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "child must die by abort: {:?}",
        out.status
    );
    let acked: Vec<(u32, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("ACK "))
        .map(|l| {
            let (uid, tag) = l.split_once(' ').unwrap();
            (uid.parse().unwrap(), tag.to_string())
        })
        .collect();
    assert!(
        acked.len() > 10,
        "the child acknowledged writes before aborting ({})",
        acked.len()
    );

    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let u = folder(&store, "u", FolderKind::Inbox).await;
        let v = folder(&store, "v", FolderKind::Inbox).await;
        let in_u = store.messages(u.id, 1, u32::MAX).await.unwrap();
        let in_v = store.messages(v.id, 1, u32::MAX).await.unwrap();
        // Every acknowledged message is present with its own body.
        for (uid, tag) in &acked {
            let m = in_u.iter().find(|m| m.uid == *uid).unwrap_or_else(|| panic!("acked uid {uid} lost"));
            let body = store.body(m.body_id).await.unwrap();
            assert!(body.starts_with(format!("Subject: {tag}\r\n").as_bytes()));
        }
        // Nothing half-written: both copies or neither, counters consistent.
        assert_eq!(in_u.len(), in_v.len());
        assert!(in_u.len() < 50 * 1000, "the abort came mid-run");
        assert_eq!(u.uidnext, in_u.last().map_or(1, |m| m.uid + 1));
        let sum: u64 = in_u.iter().map(|m| m.size).sum();
        assert_eq!(store.quota("u").await.unwrap().used, sum);
        let (orphans, integrity): (i64, String) = store
            .read_blocking(|c| {
                Ok((
                    c.query_row("SELECT count(*) FROM bodies b WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b.id)", [], |r| r.get(0))?,
                    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!(orphans, 0);
        assert_eq!(integrity, "ok");
    });
}

async fn deliver_to(store: &Arc<SqliteStore>, folder_id: i64, body: &[u8], flags: &[&str]) -> u32 {
    let res = store
        .deliver(
            Arc::from(body),
            1_700_000_000_000,
            vec![Target {
                folder: FolderRef::Id(folder_id),
                flags: flags.iter().map(|f| f.to_string()).collect(),
            }],
        )
        .await
        .unwrap();
    res[0].as_ref().unwrap().uid
}

/// VANISHED (EARLIER) asks for the UIDs expunged from one folder above a MODSEQ.
#[tokio::test]
async fn expunged_since_names_one_folders_expunges_above_a_modseq() {
    let (_d, store) = open_temp();
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

fn count(store: &Arc<SqliteStore>, sql: &'static str) -> i64 {
    store
        .read_blocking(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .unwrap()
}

#[tokio::test]
async fn copy_keeps_flags_shares_bodies_and_charges_quota() {
    let (_d, store) = open_temp();
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
    assert_eq!(count(&store, "SELECT count(*) FROM bodies"), 3);
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

#[tokio::test]
async fn move_across_mailboxes_expunges_and_moves_quota() {
    let (_d, store) = open_temp();
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
    assert_eq!(count(&store, "SELECT count(*) FROM bodies"), 2);
}

#[tokio::test]
async fn move_within_a_full_mailbox_is_allowed() {
    let (_d, store) = open_temp();
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

#[tokio::test]
async fn over_quota_copy_changes_nothing() {
    let (_d, store) = open_temp();
    store.create_mailbox("a", 1 << 20).await.unwrap();
    store.create_mailbox("small", 8).await.unwrap();
    let a = folder(&store, "a", FolderKind::Inbox).await;
    let s = folder(&store, "small", FolderKind::Inbox).await;
    deliver_to(&store, a.id, b"12345", &[]).await;
    deliver_to(&store, a.id, b"67890", &[]).await;
    let a = folder(&store, "a", FolderKind::Inbox).await;
    let changes_before = count(&store, "SELECT count(*) FROM changes");
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
    assert_eq!(
        count(&store, "SELECT count(*) FROM changes"),
        changes_before
    );
    // One of them fits.
    let out = store
        .copy_messages(a.id, vec![2], s.id, true)
        .await
        .unwrap();
    assert_eq!(out.unwrap().pairs, vec![(2, 1)]);
    assert_eq!(store.quota("a").await.unwrap().used, 5);
}

#[tokio::test]
async fn rename_moves_subfolders_and_keeps_uidvalidity() {
    let (_d, store) = open_temp();
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

#[tokio::test]
async fn renaming_inbox_moves_its_messages_to_a_new_folder() {
    let (_d, store) = open_temp();
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

#[tokio::test]
async fn subscription_is_stored() {
    let (_d, store) = open_temp();
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

#[tokio::test]
async fn body_cache_lives_and_dies_with_its_body() {
    let (_d, store) = open_temp();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let i = folder(&store, "u", FolderKind::Inbox).await;
    let a = folder(&store, "u", FolderKind::Archive).await;
    deliver_to(&store, i.id, b"body", &[]).await;
    let body_id = store.messages(i.id, 1, 1).await.unwrap()[0].body_id;
    assert_eq!(store.body_cache(body_id).await.unwrap(), None);
    store.put_body_cache(body_id, b"v1".to_vec()).await.unwrap();
    store.put_body_cache(body_id, b"v2".to_vec()).await.unwrap();
    assert_eq!(
        store.body_cache(body_id).await.unwrap(),
        Some(b"v2".to_vec())
    );
    // Still referenced from the copy: the cache stays.
    store
        .copy_messages(i.id, vec![1], a.id, false)
        .await
        .unwrap()
        .unwrap();
    store.expunge(i.id, vec![1]).await.unwrap();
    assert_eq!(
        store.body_cache(body_id).await.unwrap(),
        Some(b"v2".to_vec())
    );
    store.expunge(a.id, vec![1]).await.unwrap();
    assert_eq!(store.body_cache(body_id).await.unwrap(), None);
    assert_eq!(count(&store, "SELECT count(*) FROM body_cache"), 0);
    // A put for a body that is gone is a quiet no-op.
    store
        .put_body_cache(body_id, b"late".to_vec())
        .await
        .unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM body_cache"), 0);
    // Deleting a folder frees its bodies and their cache rows too.
    let f = store.create_folder("u", "Tmp").await.unwrap();
    deliver_to(&store, f.id, b"tmp", &[]).await;
    let tmp_body = store.messages(f.id, 1, 1).await.unwrap()[0].body_id;
    store.put_body_cache(tmp_body, b"c".to_vec()).await.unwrap();
    store.delete_folder(f.id).await.unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM body_cache"), 0);
}

#[tokio::test]
async fn append_all_stores_every_message_or_none() {
    let (_d, store) = open_temp();
    store.create_mailbox("u", 250).await.unwrap();
    let inbox = folder(&store, "u", FolderKind::Inbox).await;
    let msg = |n: usize, flag: &str| NewMessage {
        body: Arc::from(vec![b'x'; n]),
        internal_date: 1_700_000_000_000,
        flags: vec![flag.to_string()],
    };
    let before = store.latest_change("u").await.unwrap();
    // The third message breaks the quota: the first two are undone with it.
    let res = store
        .append_all(
            inbox.id,
            vec![
                msg(100, "\\Seen"),
                msg(100, "\\Flagged"),
                msg(100, "\\Draft"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(res, Err(Refused::OverQuota));
    assert!(
        store
            .messages(inbox.id, 1, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.quota("u").await.unwrap().used, 0);
    assert_eq!(store.latest_change("u").await.unwrap(), before);
    // Within the quota all are stored, in order, with their own flags.
    let stored = store
        .append_all(inbox.id, vec![msg(100, "\\Seen"), msg(100, "\\Flagged")])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.iter().map(|s| s.uid).collect::<Vec<_>>(), vec![1, 2]);
    let metas = store.messages(inbox.id, 1, u32::MAX).await.unwrap();
    assert_eq!(metas[0].flags, vec!["\\Seen".to_string()]);
    assert_eq!(metas[1].flags, vec!["\\Flagged".to_string()]);
    assert_eq!(store.quota("u").await.unwrap().used, 200);
    assert_eq!(
        store.append_all(-1, vec![msg(1, "")]).await.unwrap(),
        Err(Refused::NoSuchFolder)
    );
}
