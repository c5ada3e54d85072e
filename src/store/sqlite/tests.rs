//! SQLite's own crash behaviour: an abort in the middle of a group-commit batch
//! keeps every acknowledged write and leaves the file consistent; and its writer
//! batching (concurrent writes share commits). The store's
//! behaviour through its interface is specified in `store::conformance`.

use std::sync::Arc;

use super::*;
use crate::store::conformance::{folder, inbox};
use crate::store::{Backend, FolderKind};

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
        let store: Arc<dyn Backend> =
            Arc::new(SqliteStore::open(std::path::Path::new(&path)).unwrap());
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

    let sqlite = Arc::new(SqliteStore::open(&path).unwrap());
    let store: Arc<dyn Backend> = sqlite.clone();
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
        let (orphans, integrity): (i64, String) = sqlite
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

#[test]
fn uids_dated_before_reads_the_date_index() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("store.sqlite")).unwrap();
    let plan: Vec<String> = sqlite
        .read_blocking(|c| {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {}", ops::UIDS_DATED_BEFORE))?;
            let rows = st.query_map(rusqlite::params![1, 1_000, 500], |r| r.get::<_, String>(3))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap();
    assert!(
        plan.iter().any(|d| d.contains("messages_dated")),
        "the sweep query must not scan the folder: {plan:?}"
    );
}

/// SQLite's writer batches concurrent writes into shared commits: the suite's
/// 200 concurrent deliveries take fewer than 100.
#[tokio::test]
async fn concurrent_writers_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Backend> =
        Arc::new(SqliteStore::open(&dir.path().join("store.sqlite")).unwrap());
    let commits = |s: &Arc<dyn Backend>| {
        s.writer_stats()
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = commits(&store);
    crate::store::conformance::writes::two_hundred_concurrent_deliveries(&store).await;
    let taken = commits(&store) - before;
    assert!(
        taken < 100,
        "200 concurrent deliveries took {taken} commits: no group commit"
    );
}
