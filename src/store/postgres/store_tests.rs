//! PostgreSQL's own tests (the shared behaviour is in `store::conformance`):
//! several daemons (one pool each) on one database, the start-up refusals, and
//! concurrent migrations. They need `MAILGATE_TEST_POSTGRES` (tests/pg.sh).

use std::sync::Arc;

use super::testing::{available, create_database, execute};
use super::*;
use crate::store::{FolderKind, FolderRef};
use tokio_postgres::NoTls;

pub(super) fn settings(url: &str) -> Settings {
    Settings {
        url: url.to_string(),
        pool_size: 8,
    }
}

/// A plain delivery target.
fn to(folder: FolderRef) -> Target {
    Target {
        folder,
        flags: vec![],
        properties: vec![],
    }
}

/// Two stores (two daemons' pools) on one fresh database; the directory names it.
pub(super) async fn two_daemons() -> (tempfile::TempDir, Arc<PgStore>, Arc<PgStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let a = Arc::new(PgStore::open(&settings(&url)).await.unwrap());
    let b = Arc::new(PgStore::open(&settings(&url)).await.unwrap());
    (dir, a, b)
}

pub(super) async fn inbox_of(store: &PgStore, mailbox: &str) -> Folder {
    store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.kind == Some(FolderKind::Inbox))
        .unwrap()
}

/// Two daemons (two stores, two pools) times four writers deliver into one
/// folder: UIDs are unique, dense and ascending per writer, MODSEQ counts every
/// delivery once, and the change feed has no gap (a SEQUENCE would leave one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_database_hand_out_dense_commit_ordered_uids() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_daemons().await;
    a.create_mailbox("u", 1 << 30).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut uids = Vec::new();
            for i in 0..25 {
                let body = format!("Subject: {w}-{i}\r\n\r\nx\r\n").into_bytes();
                let target = to(FolderRef::Kind("u".into(), FolderKind::Inbox));
                let stored = store
                    .deliver(Arc::from(body), 0, vec![target])
                    .await
                    .unwrap();
                uids.push(stored[0].as_ref().unwrap().uid);
            }
            uids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let uids = t.await.unwrap();
        assert!(
            uids.windows(2).all(|w| w[0] < w[1]),
            "ascending per writer: {uids:?}"
        );
        all.extend(uids);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<u32>>(), "unique and dense");
    let f = inbox_of(&b, "u").await;
    assert_eq!((f.uidnext, f.messages, f.highest_modseq), (201, 200, 201));
    let feed = a.changes_since("u", 0, 1000).await.unwrap();
    let seqs: Vec<i64> = feed.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>(), "no gap in the feed");
    assert_eq!(b.latest_change("u").await.unwrap(), 200);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    drop(PgStore::open(&settings(&url)).await.unwrap());
    execute(&url, "UPDATE schema_version SET version = 999").await;
    match PgStore::open(&settings(&url)).await {
        Err(StoreError::SchemaTooNew { found, .. }) => assert_eq!(found, 999),
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[tokio::test]
async fn synchronous_commit_off_is_refused_naming_the_setting() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let db = url.rsplit('/').next().unwrap().to_string();
    execute(
        &url,
        &format!("ALTER DATABASE \"{db}\" SET synchronous_commit = off"),
    )
    .await;
    let e = match PgStore::open(&settings(&url)).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("synchronous_commit = off was accepted"),
    };
    assert!(e.contains("synchronous_commit"), "{e}");
}

/// Daemons starting together on an empty database migrate it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_starting_together_migrate_once() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(
            async move { PgStore::open(&settings(&url)).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let task = tokio::spawn(conn);
    let rows = client
        .query("SELECT version FROM schema_version", &[])
        .await
        .unwrap();
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, vec![schema::SCHEMA_VERSION]);
    drop(client);
    let _ = task.await;
}

/// A store call on a server that is gone answers an error, not a hang or a panic.
#[tokio::test]
async fn an_unreachable_server_is_an_error() {
    let store = PgStore::with_pool(&settings("postgres://nobody@127.0.0.1:1/none")).unwrap();
    let e = store.folders("u").await.unwrap_err().to_string();
    assert!(e.contains("postgres"), "{e}");
    assert!(
        PgStore::open(&settings("postgres://nobody@127.0.0.1:1/none"))
            .await
            .is_err()
    );
}

/// Copies and moves between two mailboxes in both directions at once, from two
/// daemons: the fixed lock order (mailboxes ascending) lets every one finish,
/// and quota use ends where the bytes are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_moves_between_mailboxes_all_finish() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_daemons().await;
    for m in ["u", "v"] {
        a.create_mailbox(m, 1 << 30).await.unwrap();
    }
    let (u, v) = (inbox_of(&a, "u").await.id, inbox_of(&a, "v").await.id);
    for folder in [u, v] {
        for _ in 0..20 {
            let target = to(FolderRef::Id(folder));
            a.deliver(Arc::from(&b"0123456789"[..]), 0, vec![target])
                .await
                .unwrap();
        }
    }
    let mut tasks = Vec::new();
    for (store, from, to) in [(a.clone(), u, v), (b.clone(), v, u)] {
        tasks.push(tokio::spawn(async move {
            for uid in 1..=20u32 {
                store
                    .copy_messages(from, vec![uid], to, true)
                    .await
                    .unwrap()
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (qu, qv) = (a.quota("u").await.unwrap(), a.quota("v").await.unwrap());
    let (fu, fv) = (inbox_of(&b, "u").await, inbox_of(&b, "v").await);
    assert_eq!((fu.messages, fv.messages), (20, 20));
    assert_eq!((qu.used, qv.used), (200, 200));
}
