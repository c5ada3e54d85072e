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
