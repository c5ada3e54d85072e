//! A sweep over a real store and directory, with time passed in: items aged by
//! their internal dates, one sweep run, each folder checked.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::metrics::RetentionMetrics;
use super::policy::{FolderConfiguration, FolderName, RetentionAction, RetentionPolicy};
use super::{SweepReport, Sweeper, stored};
use crate::directory::{Directory, NewUser};
use crate::store::{Backend, ChangeKind, Folder, FolderKind, FolderRef, Target};

const DAY: i64 = 86_400_000;
/// The sweep's "now".
const NOW: i64 = 1_800_000_000_000;

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Backend>,
    directory: Arc<Directory>,
    org: String,
    alice: String,
    carol: String,
}

fn new_user(d: &Directory, org: &str, name: &str) -> String {
    d.create_user(
        org,
        NewUser {
            name,
            display_name: name,
            password: None,
            role: None,
            first_name: None,
            last_name: None,
            hidden_from_gal: false,
        },
    )
    .unwrap()
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::open(&dir.path().join("store.sqlite"));
    let (directory, org, alice, carol) = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let d = Arc::new(Directory::open(store).unwrap());
            let org = d.create_organization("acme", "acme.test").unwrap();
            let alice = new_user(&d, &org, "alice");
            let other = d.create_organization("other", "other.test").unwrap();
            let carol = new_user(&d, &other, "carol");
            (d, org, alice, carol)
        })
        .await
        .unwrap()
    };
    for mailbox in [&alice, &carol] {
        store.create_mailbox(mailbox, 1 << 30).await.unwrap();
    }
    World {
        _dir: dir,
        store,
        directory,
        org,
        alice,
        carol,
    }
}

/// The default folders of `mailbox`, by kind.
async fn folders(store: &Arc<dyn Backend>, mailbox: &str) -> HashMap<FolderKind, Folder> {
    let all = store.folders(mailbox).await.unwrap();
    all.into_iter().filter_map(|f| Some((f.kind?, f))).collect()
}

/// Puts one message per age (in days before [`NOW`]) into `folder`.
async fn fill(store: &Arc<dyn Backend>, folder: &Folder, ages_days: &[f64]) {
    for age in ages_days {
        let date = NOW - (age * DAY as f64) as i64;
        let target = Target {
            folder: FolderRef::Id(folder.id),
            flags: vec![],
            properties: Vec::new(),
        };
        let body = format!("Subject: {age} days\r\n\r\nold\r\n");
        let r = store
            .deliver(Arc::from(body.into_bytes()), date, vec![target])
            .await
            .unwrap();
        assert!(r[0].is_ok());
    }
}

/// The internal dates (as days before NOW) in a folder.
async fn ages(store: &Arc<dyn Backend>, folder: &Folder) -> Vec<i64> {
    let mut v: Vec<i64> = store
        .messages(folder.id, 1, u32::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (NOW - m.internal_date) / DAY)
        .collect();
    v.sort();
    v
}

fn config(name: FolderName, action: RetentionAction, period: Option<u32>) -> FolderConfiguration {
    FolderConfiguration {
        name,
        action,
        period,
    }
}

async fn put_policy(w: &World, folders: Vec<FolderConfiguration>) {
    let policy = RetentionPolicy {
        id: "p1".into(),
        name: "default".into(),
        description: None,
        folder_configurations: folders,
    };
    let (store, org) = (w.store.clone(), w.org.clone());
    tokio::task::spawn_blocking(move || stored::save(&*store, &org, &policy).unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sweep_moves_and_deletes_expired_items_of_the_governed_folders_only() {
    let w = world().await;
    let s = &w.store;
    let a = &w.alice;
    let mut of = folders(s, a).await;
    let mut take = |kind| of.remove(&kind).unwrap();
    let inbox = take(FolderKind::Inbox);
    let trash = take(FolderKind::DeletedItems);
    let sent = take(FolderKind::SentItems);
    let junk = take(FolderKind::JunkEmail);
    let drafts = take(FolderKind::Drafts);
    let archive = take(FolderKind::Archive);
    let calendar = take(FolderKind::Calendar);
    let projects = s.create_folder(a, "INBOX/Projects").await.unwrap();
    fill(s, &inbox, &[40.0, 45.0, 31.0, 10.0, 29.5]).await;
    fill(s, &trash, &[8.0, 3.0]).await;
    fill(s, &sent, &[100.0, 200.0]).await;
    fill(s, &junk, &[2.0, 1.5, 0.5]).await;
    for f in [&drafts, &archive, &calendar, &projects] {
        fill(s, f, &[1000.0]).await;
    }
    let carol_inbox = folders(s, &w.carol).await[&FolderKind::Inbox].clone();
    fill(s, &carol_inbox, &[1000.0]).await;
    put_policy(
        &w,
        vec![
            config(FolderName::Inbox, RetentionAction::Delete, Some(30)),
            config(FolderName::SentItems, RetentionAction::None, None),
            config(
                FolderName::JunkEmail,
                RetentionAction::PermanentlyDelete,
                Some(1),
            ),
            config(FolderName::DeletedItems, RetentionAction::Delete, Some(7)),
        ],
    )
    .await;

    let metrics = RetentionMetrics::default();
    // Batches of 2: the Inbox's three expired items take two writes.
    let sweeper = Sweeper::new(s.clone(), w.directory.clone(), metrics.clone(), 2);
    let start = s.latest_change(a).await.unwrap();
    let mut watch = s.watch(a);
    watch.borrow_and_update();
    let stop = CancellationToken::new();
    let report = sweeper.sweep(NOW, &stop).await;
    assert_eq!(
        report,
        SweepReport {
            organizations: 1,
            mailboxes: 1,
            moved: 3,
            deleted: 3,
            errors: 0
        }
    );
    assert_eq!((metrics.moved.get(), metrics.deleted.get()), (3, 3));
    assert_eq!(metrics.sweeps.get(), 1);

    assert_eq!(
        ages(s, &inbox).await,
        vec![10, 29],
        "younger than 30 days stay"
    );
    // Deleted Items was swept first: its 8-day item went, the moved ones wait.
    assert_eq!(ages(s, &trash).await, vec![3, 31, 40, 45]);
    assert_eq!(ages(s, &junk).await, vec![0], "older than a day are gone");
    assert_eq!(
        ages(s, &sent).await,
        vec![100, 200],
        "NONE keeps everything"
    );
    for f in [&drafts, &archive, &calendar, &projects] {
        assert_eq!(ages(s, f).await, vec![1000], "{} is not governed", f.name);
    }
    assert_eq!(
        ages(s, &carol_inbox).await,
        vec![1000],
        "an organization without a policy is untouched"
    );

    // IMAP and EWS see it through the change feed: expunges in the swept
    // folders, creations in Deleted Items, and the mailbox's watchers woke.
    assert!(watch.has_changed().unwrap());
    let changes = s.changes_since(a, start, 1000).await.unwrap();
    let count = |folder: i64, kind: ChangeKind| {
        changes
            .iter()
            .filter(|c| c.folder_id == folder && c.kind == kind)
            .count()
    };
    assert_eq!(count(inbox.id, ChangeKind::Expunged), 3);
    assert_eq!(count(trash.id, ChangeKind::Created), 3);
    assert_eq!(count(trash.id, ChangeKind::Expunged), 1);
    assert_eq!(count(junk.id, ChangeKind::Expunged), 2);
    assert_eq!(changes.len(), 9);

    // A day later the moved items are past Deleted Items' 7 days too (age is
    // the internal date, which a move keeps); the Inbox's 29.5-day item moves.
    let report = sweeper.sweep(NOW + DAY, &stop).await;
    assert_eq!((report.moved, report.deleted), (1, 4));
    assert_eq!(ages(s, &inbox).await, vec![10]);
    assert_eq!(ages(s, &trash).await, vec![3, 29], "29 moved in this sweep");
    assert_eq!((metrics.moved.get(), metrics.deleted.get()), (4, 7));
    // The next sweep takes that one from Deleted Items (it is 29 days old), and
    // then nothing is left to do: a fourth sweep changes nothing.
    let report = sweeper.sweep(NOW + DAY, &stop).await;
    assert_eq!((report.moved, report.deleted), (0, 1));
    assert_eq!(ages(s, &trash).await, vec![3]);
    let latest = s.latest_change(a).await.unwrap();
    let report = sweeper.sweep(NOW + DAY, &stop).await;
    assert_eq!((report.moved, report.deleted), (0, 0));
    assert_eq!(s.latest_change(a).await.unwrap(), latest);
}

#[tokio::test]
async fn no_policy_none_only_or_a_stopped_sweeper_changes_nothing() {
    let w = world().await;
    let s = &w.store;
    let inbox = folders(s, &w.alice).await[&FolderKind::Inbox].clone();
    fill(s, &inbox, &[400.0, 800.0]).await;
    let sweeper = Sweeper::new(
        s.clone(),
        w.directory.clone(),
        RetentionMetrics::default(),
        500,
    );
    let stop = CancellationToken::new();
    assert_eq!(sweeper.sweep(NOW, &stop).await, SweepReport::default());
    put_policy(
        &w,
        vec![config(FolderName::Inbox, RetentionAction::None, Some(1))],
    )
    .await;
    assert_eq!(sweeper.sweep(NOW, &stop).await, SweepReport::default());
    put_policy(
        &w,
        vec![config(
            FolderName::Inbox,
            RetentionAction::PermanentlyDelete,
            Some(1),
        )],
    )
    .await;
    let stopped = CancellationToken::new();
    stopped.cancel();
    assert_eq!(sweeper.sweep(NOW, &stopped).await.deleted, 0);
    assert_eq!(ages(s, &inbox).await, vec![400, 800]);
    assert_eq!(sweeper.sweep(NOW, &stop).await.deleted, 2);
    assert!(ages(s, &inbox).await.is_empty());
}

#[tokio::test]
async fn the_policy_is_stored_as_one_tag_and_removed() {
    let w = world().await;
    let load = |store: Arc<dyn Backend>, org: String| {
        tokio::task::spawn_blocking(move || stored::load(&*store, &org).unwrap())
    };
    assert_eq!(load(w.store.clone(), w.org.clone()).await.unwrap(), None);
    put_policy(
        &w,
        vec![config(FolderName::Drafts, RetentionAction::Delete, Some(9))],
    )
    .await;
    let p = load(w.store.clone(), w.org.clone()).await.unwrap().unwrap();
    assert_eq!(p.id, "p1");
    assert_eq!(p.folder_configurations[0].period, Some(9));
    // Not an organization ARN: ListTagsForResource never shows it.
    let org_arn = crate::access::arn::org_arn("local", "000000000000", &w.org);
    let store = w.store.clone();
    let tags = tokio::task::spawn_blocking(move || store.tags_blocking(&org_arn).unwrap())
        .await
        .unwrap();
    assert!(tags.is_empty());
    let (store, org) = (w.store.clone(), w.org.clone());
    tokio::task::spawn_blocking(move || stored::remove(&*store, &org).unwrap())
        .await
        .unwrap();
    assert_eq!(load(w.store.clone(), w.org.clone()).await.unwrap(), None);
}
