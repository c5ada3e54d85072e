//! The store conformance suite: the store's behaviour, written once against the
//! store interface ([`Backend`] and its supertraits), run for every backend.
//!
//! Owns the behavioural specification of a backend: UIDs, UIDVALIDITY, MODSEQ, the
//! change feed with item ids and its pruning, lookup by item id, ChangeKeys, expunge, copy/move,
//! rename, quota, the body cache, concurrent writers, group commit, durability
//! (what is acknowledged is readable after a reopen), the outbound queue, the event
//! outbox, tags, and
//! the persistence of the directory and the access rules. It never names a
//! backend's types or SQL: a backend comes in through a [`Harness`], and a new
//! backend adds one line to the list at the bottom of this file. What is one
//! backend's own (schema, corruption, WAL, writer batching, crashes) is tested in
//! that backend's module.

mod feed;
mod folders;
mod items;
mod mail;
mod moves;
mod outbox;
mod persistence;
mod pruning;
pub(crate) mod writes;

use std::path::Path;
use std::sync::Arc;

use super::{Backend, FlagOp, Folder, FolderKind, FolderRef, MessageMeta, Target};

/// What the interface cannot show but the suite checks: how much a backend holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Stored message bodies (a body delivered to many mailboxes counts once).
    Bodies,
    /// Bodies no message refers to (always 0 after a commit).
    OrphanBodies,
    /// Body cache entries, all consumers.
    CacheEntries,
    /// Rows of the change feed, all mailboxes.
    Changes,
}

/// How the suite reaches one backend.
pub struct Harness {
    /// Opens the backend whose data lives under `dir`, creating it when new;
    /// called again on the same `dir` after dropping the first, it reopens it.
    pub open: fn(&Path) -> Arc<dyn Backend>,
    /// How many of `what` the backend under `dir` holds now.
    pub count: fn(&Path, Held) -> i64,
}

/// One test's backend: its data directory, the open store, and the harness.
pub struct Ctx {
    dir: tempfile::TempDir,
    pub store: Arc<dyn Backend>,
    harness: &'static Harness,
}

impl Ctx {
    /// A fresh, empty backend.
    pub fn new(harness: &'static Harness) -> Ctx {
        let dir = tempfile::tempdir().unwrap();
        let store = (harness.open)(dir.path());
        Ctx {
            dir,
            store,
            harness,
        }
    }

    /// How many of `what` the backend holds.
    pub fn count(&self, what: Held) -> i64 {
        (self.harness.count)(self.dir.path(), what)
    }

    /// Drops this handle and opens the same data again.
    pub fn reopen(&mut self) {
        self.store = (self.harness.open)(self.dir.path());
    }
}

/// The Inbox of `mailbox` as a delivery target.
pub fn inbox(mailbox: &str) -> Target {
    Target {
        folder: FolderRef::Kind(mailbox.into(), FolderKind::Inbox),
        flags: vec![],
        properties: Vec::new(),
    }
}

/// The default folder `kind` of `mailbox`.
pub async fn folder(store: &Arc<dyn Backend>, mailbox: &str, kind: FolderKind) -> Folder {
    store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.kind == Some(kind))
        .unwrap()
}

/// A folder by name.
pub async fn named(store: &Arc<dyn Backend>, mailbox: &str, name: &str) -> Folder {
    store
        .folders(mailbox)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap()
}

/// Delivers `body` to one folder with `flags`; returns its UID.
pub async fn deliver_to(
    store: &Arc<dyn Backend>,
    folder_id: i64,
    body: &[u8],
    flags: &[&str],
) -> u32 {
    let res = store
        .deliver(
            Arc::from(body),
            1_700_000_000_000,
            vec![Target {
                folder: FolderRef::Id(folder_id),
                flags: flags.iter().map(|f| f.to_string()).collect(),
                properties: Vec::new(),
            }],
        )
        .await
        .unwrap();
    res[0].as_ref().unwrap().uid
}

/// One message's life in mailbox `u`: its metadata after each step.
pub struct Life {
    pub inbox: Folder,
    /// The latest change before the flag change.
    pub start: i64,
    /// Delivered to the Inbox (UID 1).
    pub delivered: MessageMeta,
    /// After `\Seen` was added.
    pub flagged: MessageMeta,
    /// Its copy in the Archive (UID 1).
    pub copy: MessageMeta,
    /// The copy moved back to the Inbox (UID 2).
    pub moved: MessageMeta,
}

/// Creates mailbox `u` and takes one message through delivery, a flag change, a
/// copy and a move of the copy.
pub async fn live(store: &Arc<dyn Backend>) -> Life {
    let first = |v: Vec<MessageMeta>| v.into_iter().next().unwrap();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let inbox_f = folder(store, "u", FolderKind::Inbox).await;
    let archive = folder(store, "u", FolderKind::Archive).await;
    deliver_to(store, inbox_f.id, b"x", &[]).await;
    let delivered = first(store.messages(inbox_f.id, 1, 1).await.unwrap());
    let start = store.latest_change("u").await.unwrap();
    let seen = vec!["\\Seen".to_string()];
    store
        .store_flags(inbox_f.id, vec![1], FlagOp::Add, seen, None)
        .await
        .unwrap();
    let flagged = first(store.messages(inbox_f.id, 1, 1).await.unwrap());
    store
        .copy_messages(inbox_f.id, vec![1], archive.id, false)
        .await
        .unwrap()
        .unwrap();
    let copy = first(store.messages(archive.id, 1, 1).await.unwrap());
    store
        .copy_messages(archive.id, vec![1], inbox_f.id, true)
        .await
        .unwrap()
        .unwrap();
    let moved = first(store.messages(inbox_f.id, 2, 2).await.unwrap());
    Life {
        inbox: inbox_f,
        start,
        delivered,
        flagged,
        copy,
        moved,
    }
}

/// Instantiates every conformance test for one backend, as `#[tokio::test]`s in
/// a module named after it. The test list is written here once. `$skip`, when
/// given, names the tests a backend skips (it prints why: no server to test
/// against, or a part of the backend not built yet).
macro_rules! backend_suite {
    ($backend:ident, $harness:expr) => {
        backend_suite!($backend, $harness, |_test: &str| false);
    };
    ($backend:ident, $harness:expr, $skip:expr) => {
        mod $backend {
            static HARNESS: $crate::store::conformance::Harness = $harness;
            const SKIP: fn(&str) -> bool = $skip;
            backend_suite!(@each
                mail::mailbox_gets_the_default_folders_once,
                mail::delivery_stores_one_body_for_many_mailboxes,
                mail::over_quota_refuses_only_that_mailbox,
                mail::refused_everywhere_leaves_no_body,
                mail::flags_and_modseq_follow_condstore_rules,
                mail::body_cache_has_a_slot_per_consumer_and_dies_with_its_body,
                mail::a_body_id_is_never_given_to_another_body,
                mail::append_all_stores_every_message_or_none,
                mail::uids_dated_before_lists_a_folders_older_messages_in_bounded_batches,
                feed::change_feed_and_watch_see_every_change,
                feed::every_change_names_its_item,
                feed::expunged_since_names_one_folders_expunges_above_a_modseq,
                pruning::pruning_keeps_recent_and_latest_changes_and_refuses_older_positions,
                pruning::pruning_keeps_the_latest_changes_however_old,
                pruning::expunged_since_stays_exact_or_refuses_after_pruning,
                folders::user_folders_can_be_created_and_deleted,
                folders::rename_moves_subfolders_and_keeps_uidvalidity,
                folders::renaming_inbox_moves_its_messages_to_a_new_folder,
                folders::subscription_is_stored,
                folders::folders_keep_the_class_they_were_created_with,
                items::messages_and_folders_are_found_by_item_id,
                items::a_replaced_message_keeps_its_item_id_under_a_new_uid,
                items::a_message_change_key_changes_on_flags_copy_and_move,
                items::a_folder_change_key_changes_with_its_contents_and_properties,
                items::item_properties_live_and_die_with_their_item,
                items::a_folder_is_paged_newest_first,
                moves::copy_keeps_flags_shares_bodies_and_charges_quota,
                moves::move_across_mailboxes_expunges_and_moves_quota,
                moves::move_within_a_full_mailbox_is_allowed,
                moves::over_quota_copy_changes_nothing,
                writes::a_failing_write_does_not_spoil_its_batch,
                writes::concurrent_deliveries_get_dense_uids,
                writes::an_announced_write_is_counted_until_dropped,
                writes::acknowledged_writes_are_readable_after_a_reopen,
                writes::deliver_and_enqueue_is_one_write,
                persistence::queue_enqueue_due_defer_and_finish,
                persistence::tags_are_set_overwritten_limited_and_removed,
                persistence::tags_hold_records_of_several_kilobytes_unlimited,
                persistence::a_conditional_tag_write_goes_ahead_only_over_what_it_read,
                persistence::directory_survives_a_reopen_of_the_store,
                persistence::personal_access_tokens_survive_a_reopen_of_the_store,
                persistence::access_rules_survive_a_reopen_of_the_store,
                outbox::delivery_events_commit_with_the_delivery,
                outbox::outbox_reads_in_order_in_bounded_batches_and_marks_survive_a_reopen,
            );
        }
    };
    (@each $($group:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                if SKIP(stringify!($test)) {
                    return;
                }
                $crate::store::conformance::$group::$test(
                    $crate::store::conformance::Ctx::new(&HARNESS),
                )
                .await;
            }
        )*
    };
}

// The backends, one line each.
backend_suite!(sqlite, crate::store::sqlite::testing::HARNESS);
backend_suite!(
    postgres,
    crate::store::postgres::testing::HARNESS,
    crate::store::postgres::testing::skip
);
