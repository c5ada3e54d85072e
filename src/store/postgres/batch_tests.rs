//! The group commit against a real server (`MAILGATE_TEST_POSTGRES`, tests/pg.sh):
//! deliveries queued behind a transaction share the next one, keep unique
//! commit-ordered UIDs, fail alone, and two daemons' batches do not deadlock.
//! A batch is made deterministic by holding a mailbox's row lock from another
//! connection: the lane's first transaction waits on it while the rest queue.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::NoTls;

use super::super::store_tests::{inbox_of, settings, two_daemons};
use super::super::testing::{available, create_database};
use super::super::{PgStore, Settings};
use crate::store::{Backend, FolderKind, FolderRef, Refused, Store, StoreError, Stored, Target};

fn inbox(mailbox: &str) -> Target {
    Target {
        folder: FolderRef::Kind(mailbox.into(), FolderKind::Inbox),
        flags: vec![],
        properties: vec![],
    }
}

/// (commits, writes) of `store` so far.
fn counts(store: &PgStore) -> (u64, u64) {
    let s = store.writer_stats();
    (
        s.commits.load(std::sync::atomic::Ordering::Relaxed),
        s.writes.load(std::sync::atomic::Ordering::Relaxed),
    )
}

async fn fresh_store() -> (tempfile::TempDir, String, Arc<PgStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let store = Arc::new(PgStore::open(&settings(&url)).await.unwrap());
    (dir, url, store)
}

/// A connection holding the row lock of `mailbox` until it is dropped (or
/// [`Held::release`]d): deliveries into it wait, and later ones queue.
struct Held {
    client: tokio_postgres::Client,
}

impl Held {
    async fn lock(url: &str, mailbox: &str) -> Held {
        let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute("BEGIN").await.unwrap();
        let rows = client
            .query(
                "SELECT id FROM mailboxes WHERE id = $1 FOR UPDATE",
                &[&mailbox],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "mailbox {mailbox} exists");
        Held { client }
    }

    /// Waits until a transaction of this database waits on a lock (the
    /// lane's first batch, blocked on this one).
    async fn until_waited_on(&self) {
        for _ in 0..500 {
            let row = self
                .client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no delivery waited on the held lock");
    }

    async fn release(self) {
        self.client.batch_execute("ROLLBACK").await.unwrap();
    }
}

/// Waits until `n` deliveries are queued in `store`'s lanes.
async fn queued_at_least(store: &PgStore, n: usize) {
    for _ in 0..500 {
        if store.batch.queued() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "only {} deliveries queued, {n} expected",
        store.batch.queued()
    );
}

/// A delivery's answer.
type Answer = crate::store::Result<Vec<Result<Stored, Refused>>>;

/// Spawns one delivery of `targets` per element of `flags` (a message each,
/// with those flags on every copy); the handles answer in spawn order.
fn spawn_deliveries(
    store: &Arc<PgStore>,
    targets: &[Target],
    flags: Vec<Vec<String>>,
) -> Vec<tokio::task::JoinHandle<Answer>> {
    flags
        .into_iter()
        .enumerate()
        .map(|(i, flags)| {
            let store = store.clone();
            let targets: Vec<Target> = targets
                .iter()
                .map(|t| Target {
                    flags: flags.clone(),
                    ..t.clone()
                })
                .collect();
            tokio::spawn(async move {
                let body = format!("Subject: {i}\r\n\r\n{}\r\n", "x".repeat(70)).into_bytes();
                store.deliver(Arc::from(body), 0, targets).await
            })
        })
        .collect()
}

/// Deliveries of `targets` with `flags` each, the first alone in a transaction
/// that waits on `held`, the others queued behind it; then the lock goes.
async fn batch_behind(
    store: &Arc<PgStore>,
    held: Held,
    targets: &[Target],
    mut flags: Vec<Vec<String>>,
) -> Vec<Answer> {
    let rest = flags.split_off(1);
    let mut tasks = spawn_deliveries(store, targets, flags);
    held.until_waited_on().await;
    let n = rest.len();
    tasks.extend(spawn_deliveries(store, targets, rest));
    queued_at_least(store, n).await;
    held.release().await;
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_queued_behind_a_commit_share_one_with_unique_ascending_uids() {
    if !available() {
        return;
    }
    let (_dir, url, store) = fresh_store().await;
    store.create_mailbox("u", 1 << 30).await.unwrap();
    let before = counts(&store);
    let held = Held::lock(&url, "u").await;
    let n = 40;
    let answers = batch_behind(&store, held, &[inbox("u")], vec![vec![]; n]).await;
    let mut uids = Vec::new();
    for answer in answers {
        uids.push(answer.unwrap()[0].as_ref().unwrap().uid);
    }
    let (commits, writes) = counts(&store);
    assert_eq!(writes - before.1, n as u64, "every delivery counted");
    assert_eq!(
        commits - before.0,
        2,
        "one transaction waiting on the lock, then one for the {} queued",
        n - 1
    );
    // Spawn order is not submission order: the set is checked here, the order
    // (UIDs ascending with the feed's seqs) on the feed below.
    uids.sort_unstable();
    assert_eq!(uids, (1..=n as u32).collect::<Vec<_>>(), "unique and dense");
    let folder = inbox_of(&store, "u").await;
    assert_eq!(
        (folder.uidnext, folder.messages, folder.highest_modseq),
        (n as u32 + 1, n as u32, n as u64 + 1)
    );
    let feed = store.changes_since("u", 0, 1000).await.unwrap();
    let seqs: Vec<i64> = feed.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=n as i64).collect::<Vec<_>>(), "feed without gap");
    let feed_uids: Vec<u32> = feed.iter().map(|c| c.uid).collect();
    assert_eq!(
        feed_uids,
        (1..=n as u32).collect::<Vec<_>>(),
        "UIDs ascend in commit order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_quota_or_missing_target_in_a_batch_fails_alone() {
    if !available() {
        return;
    }
    let (_dir, url, store) = fresh_store().await;
    store.create_mailbox("big", 1 << 30).await.unwrap();
    // Room for three of the 6 messages (each under 100 bytes).
    store.create_mailbox("small", 300).await.unwrap();
    let before = counts(&store);
    // Both mailboxes in every delivery: one lane ("big" sorts first).
    let held = Held::lock(&url, "big").await;
    let targets = [inbox("small"), inbox("big"), {
        let mut gone = inbox("big");
        gone.folder = FolderRef::Id(i64::MAX);
        gone
    }];
    let n = 6;
    let answers = batch_behind(&store, held, &targets, vec![vec![]; n]).await;
    let mut small_ok = 0;
    for answer in answers {
        let outcome = answer.unwrap();
        assert_eq!(outcome.len(), 3);
        match &outcome[0] {
            Ok(_) => small_ok += 1,
            Err(refused) => assert_eq!(*refused, Refused::OverQuota),
        }
        assert!(outcome[1].is_ok(), "big takes every copy: {outcome:?}");
        assert_eq!(outcome[2], Err(Refused::NoSuchFolder));
    }
    assert_eq!(small_ok, 3, "exactly the copies that fit");
    assert!(store.quota("small").await.unwrap().used <= 300);
    let (commits, writes) = counts(&store);
    assert_eq!(writes - before.1, n as u64);
    assert_eq!(
        commits - before.0,
        2,
        "the refusals did not split the batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_error_in_one_delivery_fails_it_alone() {
    if !available() {
        return;
    }
    let (_dir, url, store) = fresh_store().await;
    store.create_mailbox("u", 1 << 30).await.unwrap();
    let held = Held::lock(&url, "u").await;
    // A NUL byte is not text to PostgreSQL: the third delivery's flags fail
    // its INSERT, which aborts the whole transaction.
    let mut flags = vec![vec![]; 6];
    flags[2] = vec!["bad\0flag".to_string()];
    let before = counts(&store);
    let answers = batch_behind(&store, held, &[inbox("u")], flags).await;
    let mut uids = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        if i == 2 {
            assert!(matches!(answer, Err(StoreError::Io(_))), "{answer:?}");
        } else {
            uids.push(answer.unwrap()[0].as_ref().unwrap().uid);
        }
    }
    uids.sort_unstable();
    assert_eq!(uids, vec![1, 2, 3, 4, 5], "the others committed, densely");
    assert_eq!(store.latest_change("u").await.unwrap(), 5);
    // The first alone, the batch of five (rolled back), then each on its own.
    let (commits, writes) = counts(&store);
    assert_eq!((commits - before.0, writes - before.1), (5, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_answers_every_caller_unavailable() {
    // Port 1 on loopback: nothing listens, every connection is refused.
    let store = Arc::new(
        PgStore::with_pool(&Settings {
            url: "postgres://mg@127.0.0.1:1/mail?connect_timeout=2".into(),
            pool_size: 2,
        })
        .unwrap(),
    );
    let tasks = spawn_deliveries(&store, &[inbox("u")], vec![vec![]; 8]);
    for t in tasks {
        let answer = t.await.unwrap();
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "{answer:?}"
        );
    }
    assert_eq!(counts(&store), (0, 0), "nothing committed");
    assert_eq!(store.batch.queued(), 0, "no delivery left queued");
}

/// Two daemons, four writers each, every delivery into two mailboxes named in
/// opposite orders by the two daemons: batches of both lock in one order, so
/// nothing deadlocks (the timeout), and UIDs stay unique and dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_batching_into_the_same_mailboxes_neither_deadlock_nor_duplicate() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_daemons().await;
    a.create_mailbox("u", 1 << 30).await.unwrap();
    a.create_mailbox("v", 1 << 30).await.unwrap();
    let (ca, cb) = (counts(&a), counts(&b));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (store, targets) = if w % 2 == 0 {
            (a.clone(), vec![inbox("u"), inbox("v")])
        } else {
            (b.clone(), vec![inbox("v"), inbox("u")])
        };
        tasks.push(tokio::spawn(async move {
            let mut uids = Vec::new();
            for i in 0..25 {
                let body = format!("Subject: {w}-{i}\r\n\r\nx\r\n").into_bytes();
                let outcome = store
                    .deliver(Arc::from(body), 0, targets.clone())
                    .await
                    .unwrap();
                let uid = |k: usize| outcome[k].as_ref().unwrap().uid;
                uids.push(if w % 2 == 0 {
                    (uid(0), uid(1))
                } else {
                    (uid(1), uid(0))
                });
            }
            uids
        }));
    }
    let all = tokio::time::timeout(Duration::from_secs(120), async {
        let mut all = Vec::new();
        for t in tasks {
            let uids = t.await.unwrap();
            assert!(
                uids.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
                "ascending per writer: {uids:?}"
            );
            all.extend(uids);
        }
        all
    })
    .await
    .expect("two daemons' batches deadlocked");
    let (mut u, mut v): (Vec<u32>, Vec<u32>) = all.into_iter().unzip();
    u.sort_unstable();
    v.sort_unstable();
    assert_eq!(u, (1..=200).collect::<Vec<u32>>(), "u: unique and dense");
    assert_eq!(v, (1..=200).collect::<Vec<u32>>(), "v: unique and dense");
    for mailbox in ["u", "v"] {
        let feed = b.changes_since(mailbox, 0, 1000).await.unwrap();
        let seqs: Vec<i64> = feed.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<i64>>(), "{mailbox}: no gap");
    }
    let commits = counts(&a).0 - ca.0 + counts(&b).0 - cb.0;
    let writes = counts(&a).1 - ca.1 + counts(&b).1 - cb.1;
    assert_eq!(writes, 200);
    assert!(
        commits < writes,
        "{commits} commits for {writes} deliveries"
    );
}
