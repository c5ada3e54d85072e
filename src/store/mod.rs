//! Mailbox storage: folders, messages, flags, quota, the change feed, the outbound
//! queue, tags, and the persistence of the directory and the access rules.
//!
//! Owns the store interface ([`Store`], [`queue::OutboundQueue`], [`Tags`], the
//! event [`Outbox`], and
//! [`Backend`], which bundles them with `directory`'s and `access`'s persistence
//! traits), the factory that builds the configured backend ([`open`]), the backends
//! (`sqlite`, the embedded default; `postgres`, for many daemons, in progress), and
//! the conformance suite every backend passes.
//! Nothing outside this module names a backend type or touches SQL; this module
//! never reaches up into the protocols, `server` or `events`.
//!
//! The model is the intersection IMAP and EWS both need: folders with UIDVALIDITY,
//! UIDNEXT and HIGHESTMODSEQ (IMAP, CONDSTORE/QRESYNC), stable opaque item ids and a
//! ChangeKey per message and folder (EWS), and one change feed per mailbox, naming
//! the item of each change, that IMAP IDLE and EWS notifications both read. A
//! message body delivered to many mailboxes is stored once. Every write returns only
//! after it is durable.

mod backend;
#[cfg(test)]
mod conformance;
mod folders;
pub mod housekeeping;
pub mod migrate;
pub mod outbox;
// Reached only by the conformance suite until `open` starts it (issue 19: it
// refuses the backend while parts are missing).
#[cfg_attr(not(test), allow(dead_code))]
mod postgres;
pub mod queue;
mod rules;
pub mod shared_state;
mod sqlite;
pub mod tags;
#[cfg(test)]
pub mod testing;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use tokio::sync::watch;

pub use backend::{
    Backend, BackendMetrics, STATE_POLL, Singleton, StateChange, Versioned, WriterStats, check,
    next_state_change, open, open_embedded,
};
pub use folders::{DEFAULT_FOLDERS, FolderKind};
pub use housekeeping::Housekeeping;
pub use outbox::{DeliveryEvents, Outbox, OutboxEvent, OutboxRow};
pub use tags::{Tag, Tags};

/// A mailbox is owned by a user or resource and named by its directory id.
pub type MailboxId = str;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file exists but is not a sound store; never rewritten automatically.
    #[error("store {path} is corrupt: {detail}")]
    Corrupt { path: String, detail: String },
    /// The file was written by a newer mailgate.
    #[error(
        "store {path} has schema version {found}, newer than this mailgate supports ({supported})"
    )]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("store I/O: {0}")]
    Io(String),
    /// The store's server cannot be reached (a shared database that is down or
    /// restarting): temporary, so protocols answer "try again later" (SMTP 451,
    /// IMAP `NO [UNAVAILABLE]`, EWS ErrorMailboxStoreUnavailable) and nothing is
    /// acknowledged that was not stored.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store is shut down")]
    Closed,
    /// The change feed no longer reaches back to the position asked for: its
    /// older entries were pruned ([`housekeeping`]). The reader starts over from
    /// the current state (an IMAP view reloads, an EWS sync state is invalid).
    #[error("the change feed was pruned past the position asked for")]
    FeedPruned,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A folder as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub id: i64,
    pub mailbox_id: String,
    /// Full path, `/`-separated (IMAP shows it with its own delimiter).
    pub name: String,
    /// Set for the default folders (Inbox, Sent Items, ...).
    pub kind: Option<FolderKind>,
    /// EWS FolderClass: IPF.Note, IPF.Appointment, ...
    pub folder_class: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub subscribed: bool,
    /// Stable opaque id for EWS FolderId.
    pub item_id: String,
    /// The EWS ChangeKey: changes on every change of the folder's properties
    /// (name, subscription, its set of subfolders) and of the set of messages in
    /// it (delivery, copy or move in, expunge or move out); not on flag changes of
    /// its messages, which change those messages' keys.
    pub change_key: String,
    pub messages: u32,
    pub unseen: u32,
}

/// Where a new message goes.
#[derive(Debug, Clone)]
pub enum FolderRef {
    Id(i64),
    /// A default folder of a mailbox, e.g. the Inbox for local delivery.
    Kind(String, FolderKind),
}

/// One copy of a new message: its folder, initial flags and properties.
#[derive(Debug, Clone)]
pub struct Target {
    pub folder: FolderRef,
    pub flags: Vec<String>,
    /// Properties kept beside this copy (see [`Property`]): the EWS properties of
    /// a message sent with SendAndSaveCopy go with its Sent Items copy; empty for
    /// every other delivery.
    pub properties: Vec<Property>,
}

/// One message of an all-or-nothing append (IMAP MULTIAPPEND).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub body: Arc<[u8]>,
    pub internal_date: i64,
    pub flags: Vec<String>,
    /// Properties the message itself cannot carry (see [`Property`]); empty for
    /// everything IMAP and SMTP store.
    pub properties: Vec<Property>,
}

/// A property of an item that its message bytes cannot carry (an EWS reminder, a
/// receipt request, a client's own MAPI property): a name the protocol chose and
/// an opaque value. Properties stay with the item while its flags change, move to
/// its copies, and go when it is expunged; IMAP never sees them, since no IMAP
/// client could.
pub type Property = (String, Vec<u8>);

/// A change of one item's flags and properties as one write (EWS UpdateItem): one
/// new MODSEQ, one feed entry, one new ChangeKey.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemChange {
    /// The new flag list, if the flags change.
    pub flags: Option<Vec<String>>,
    /// Properties set (replacing a value under the same name).
    pub set: Vec<Property>,
    /// Names of properties removed.
    pub remove: Vec<String>,
}

/// A stored message's identity, returned once it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub folder_id: i64,
    pub uidvalidity: u32,
    pub uid: u32,
    pub modseq: u64,
    pub item_id: String,
}

/// Why one target of a delivery was refused while the others may have succeeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("mailbox over quota")]
    OverQuota,
    #[error("no such folder or mailbox")]
    NoSuchFolder,
}

/// Per-message metadata; the body is fetched separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub internal_date: i64,
    pub size: u64,
    pub body_id: i64,
    pub item_id: String,
}

impl MessageMeta {
    /// The EWS ChangeKey: changes whenever the message changes (every change of a
    /// stored message, its flags, gives it a new MODSEQ), and a copy or move is a
    /// new item with a new item id and so a new key.
    pub fn change_key(&self) -> String {
        change_key(&self.item_id, self.modseq)
    }
}

/// An EWS ChangeKey from an item (or folder) id and a counter that moves on every
/// change of it: opaque, short, and distinct for distinct (id, counter) pairs in
/// practice (a 64-bit FNV-1a hash), so a key never repeats for a new item that
/// happens to share a counter value with an old one.
pub fn change_key(item_id: &str, version: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in item_id.bytes().chain(version.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{version:x}-{h:016x}")
}

/// Whether `key` has [`change_key`]'s form: EWS answers a malformed ChangeKey
/// with ErrorInvalidChangeKey, a well-formed stale one with a conflict.
pub fn is_change_key(key: &str) -> bool {
    key.split_once('-').is_some_and(|(version, hash)| {
        !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_hexdigit())
            && hash.len() == 16
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// A flag change that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Vec<String>,
}

/// The result of a conditional flag store (CONDSTORE UNCHANGEDSINCE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagOutcome {
    pub updated: Vec<FlagUpdate>,
    /// UIDs skipped because they changed after `unchanged_since`.
    pub modified: Vec<u32>,
}

/// What happened in a mailbox; IDLE and EWS notifications replay these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub folder_id: i64,
    pub kind: ChangeKind,
    pub uid: u32,
    pub modseq: u64,
    /// The item id of the message (or, for the folder kinds, of the folder) the
    /// change is about, so a sync can name an item that is gone. Empty only on
    /// rows recorded before the feed carried ids whose item was already gone
    /// when the store was upgraded.
    pub item_id: String,
}

/// Who derived a body cache entry: each consumer has its own slot per body, so
/// IMAP's structure and EWS's item shape never overwrite each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheConsumer {
    /// IMAP's ENVELOPE and BODYSTRUCTURE (`imap::content::Structure`).
    ImapStructure,
    /// EWS's item shape (body, attachments, headers), once EWS lands.
    EwsItem,
}

impl CacheConsumer {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheConsumer::ImapStructure => "imap_structure",
            CacheConsumer::EwsItem => "ews_item",
        }
    }
}

/// The kinds of change in the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Flags,
    /// Flags changed in `\Seen` alone (EWS sync reports it as a ReadFlagChange).
    ReadFlag,
    Expunged,
    FolderCreated,
    FolderDeleted,
    /// A folder got a new name (same id and UIDVALIDITY); re-read the folder list.
    FolderRenamed,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Flags => "flags",
            ChangeKind::ReadFlag => "read_flag",
            ChangeKind::Expunged => "expunged",
            ChangeKind::FolderCreated => "folder_created",
            ChangeKind::FolderDeleted => "folder_deleted",
            ChangeKind::FolderRenamed => "folder_renamed",
        }
    }
    fn parse(s: &str) -> Option<ChangeKind> {
        Some(match s {
            "created" => ChangeKind::Created,
            "flags" => ChangeKind::Flags,
            "read_flag" => ChangeKind::ReadFlag,
            "expunged" => ChangeKind::Expunged,
            "folder_created" => ChangeKind::FolderCreated,
            "folder_deleted" => ChangeKind::FolderDeleted,
            "folder_renamed" => ChangeKind::FolderRenamed,
            _ => return None,
        })
    }
}

/// Result of a copy or move: the UIDVALIDITY of the target folder and the
/// (source UID, new UID) pairs in source UID order, as COPYUID reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutcome {
    pub uidvalidity: u32,
    pub pairs: Vec<(u32, u32)>,
}

/// Mailbox quota in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub used: u64,
    pub limit: u64,
}

/// A write announced before it is submitted, so that group commit can wait for
/// it (see `Store::expect_write`). Dropping it withdraws the announcement: it is
/// dropped just before the write is submitted, or with the work that was going
/// to make it.
#[must_use]
pub struct ExpectedWrite(Option<Arc<AtomicUsize>>);

impl ExpectedWrite {
    /// An announcement that tells no one.
    pub fn none() -> ExpectedWrite {
        ExpectedWrite(None)
    }

    /// An announcement counted in `expected` until dropped.
    pub(crate) fn counted_in(expected: Arc<AtomicUsize>) -> ExpectedWrite {
        expected.fetch_add(1, Ordering::Relaxed);
        ExpectedWrite(Some(expected))
    }
}

impl Drop for ExpectedWrite {
    fn drop(&mut self) {
        if let Some(expected) = &self.0 {
            expected.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Everything protocols need from storage.
#[async_trait]
pub trait Store: Send + Sync {
    /// Announces a write that will be submitted within moments (a message whose
    /// data is arriving), so a commit about to start may wait briefly for it and
    /// share its fsync.
    fn expect_write(&self) -> ExpectedWrite {
        ExpectedWrite::none()
    }
    /// Creates the mailbox with the default folders; a no-op if it exists.
    async fn create_mailbox(&self, mailbox: &MailboxId, quota_bytes: u64) -> Result<()>;
    /// Folders of a mailbox, ordered by name.
    async fn folders(&self, mailbox: &MailboxId) -> Result<Vec<Folder>>;
    /// Creates a mail folder (`IPF.Note`; parents must exist); `Conflict` if the
    /// name is taken.
    async fn create_folder(&self, mailbox: &MailboxId, name: &str) -> Result<Folder> {
        self.create_folder_of_class(mailbox, name, "IPF.Note").await
    }
    /// Creates a folder of an EWS folder class (`IPF.Contact`, ...; empty for none,
    /// as EWS clients may create folders without one).
    async fn create_folder_of_class(
        &self,
        mailbox: &MailboxId,
        name: &str,
        folder_class: &str,
    ) -> Result<Folder>;
    /// Deletes a user folder and its messages; default folders cannot be deleted.
    async fn delete_folder(&self, folder_id: i64) -> Result<()>;
    /// Stores `body` once and links it into every target; one result per target.
    /// Returns when every accepted copy is durable.
    async fn deliver(
        &self,
        body: Arc<[u8]>,
        internal_date: i64,
        targets: Vec<Target>,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>>;
    /// [`Store::deliver`], and in the same commit the events `events` computes
    /// from the outcome go into the [`Outbox`]: they are durable when the delivery is.
    async fn deliver_recording(
        &self,
        body: Arc<[u8]>,
        internal_date: i64,
        targets: Vec<Target>,
        events: DeliveryEvents,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>>;
    /// Stores every message in one folder, in order, or none of them (IMAP
    /// MULTIAPPEND, RFC 3502: a refusal of any message undoes the others). Returns
    /// when all are durable.
    async fn append_all(
        &self,
        folder_id: i64,
        messages: Vec<NewMessage>,
    ) -> Result<std::result::Result<Vec<Stored>, Refused>>;
    /// Replaces a message by new content in one durable write: the old UID is
    /// expunged and the new message gets a new UID (IMAP messages never change)
    /// but keeps the item id (an edited EWS draft is the same item, with a new
    /// ChangeKey); its properties become `message.properties`. `NotFound` when
    /// the message is gone.
    async fn replace_message(
        &self,
        folder_id: i64,
        uid: u32,
        message: NewMessage,
    ) -> Result<std::result::Result<Stored, Refused>>;
    /// Metadata of messages with `first <= uid <= last`, ascending.
    async fn messages(&self, folder_id: i64, first: u32, last: u32) -> Result<Vec<MessageMeta>>;
    /// One page of a folder, newest first (internal date, then UID, descending):
    /// how EWS lists a folder without a sort, read without the rest of the folder.
    async fn messages_newest_first(
        &self,
        folder_id: i64,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<MessageMeta>>;
    /// UIDs of the messages in a folder whose internal date is before `before_ms`
    /// (strictly), ascending, at most `limit`: how the retention sweeper finds
    /// expired items a bounded batch at a time, without reading the folder.
    async fn uids_dated_before(
        &self,
        folder_id: i64,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<u32>>;
    /// The raw message.
    async fn body(&self, body_id: i64) -> Result<Vec<u8>> {
        self.bodies(vec![body_id])
            .await?
            .pop()
            .flatten()
            .ok_or(StoreError::NotFound("message body"))
    }
    /// Raw messages in the order of `body_ids`, `None` where a body is gone: one
    /// read for a page of items (EWS GetItem, FindItem) instead of a read each.
    /// The caller bounds the batch by the messages' sizes.
    async fn bodies(&self, body_ids: Vec<i64>) -> Result<Vec<Option<Vec<u8>>>>;
    /// Changes flags of `uids`, skipping those modified after `unchanged_since`.
    async fn store_flags(
        &self,
        folder_id: i64,
        uids: Vec<u32>,
        op: FlagOp,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<FlagOutcome>;
    /// Changes one message's flags and properties together, unless it was modified
    /// after `unchanged_since`; a change that changes nothing writes nothing.
    /// `NotFound` when the message is gone.
    async fn change_item(
        &self,
        folder_id: i64,
        uid: u32,
        change: ItemChange,
        unchanged_since: Option<u64>,
    ) -> Result<FlagOutcome>;
    /// The properties of each item (by item id) that has any, in name order.
    async fn properties(
        &self,
        item_ids: Vec<String>,
    ) -> Result<std::collections::HashMap<String, Vec<Property>>>;
    /// Removes `uids`; returns those that existed.
    async fn expunge(&self, folder_id: i64, uids: Vec<u32>) -> Result<Vec<u32>>;
    /// The change feed of a mailbox after `after_seq`, at most `limit` entries;
    /// [`StoreError::FeedPruned`] when entries after `after_seq` were pruned.
    async fn changes_since(
        &self,
        mailbox: &MailboxId,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Change>>;
    /// UIDs expunged from a folder with a MODSEQ above `modseq`, ascending (QRESYNC's
    /// VANISHED (EARLIER)): filtered by SQLite, however long the feed is.
    /// [`StoreError::FeedPruned`] when expunges of the folder above `modseq` may
    /// have been pruned (the caller then answers with every UID it cannot see).
    async fn expunged_since(
        &self,
        mailbox: &MailboxId,
        folder_id: i64,
        modseq: u64,
    ) -> Result<Vec<u32>>;
    /// The sequence number of the mailbox's latest change (0 if none): where a
    /// reader of the feed starts when it has just read the current state.
    async fn latest_change(&self, mailbox: &MailboxId) -> Result<i64>;
    /// Wakes when the mailbox changes; the value is the latest change sequence number.
    fn watch(&self, mailbox: &MailboxId) -> watch::Receiver<i64>;
    /// Renames a folder; its subfolders (names under `old/`) move with it, keeping
    /// their UIDVALIDITY, so a client's cache survives a rename (RFC 9051 6.3.6).
    async fn rename_folder(&self, folder_id: i64, new_name: &str) -> Result<()>;
    /// IMAP SUBSCRIBE/UNSUBSCRIBE state of one folder.
    async fn set_subscribed(&self, folder_id: i64, subscribed: bool) -> Result<()>;
    /// Copies (or, with `remove_source`, moves) messages to another folder of the same
    /// or another mailbox in one durable write. Bodies are shared, not duplicated; the
    /// target mailbox's quota is charged. Flags and properties are kept; each copy gets a new UID,
    /// MODSEQ and item id. A move expunges the sources in the same transaction.
    async fn copy_messages(
        &self,
        from_folder: i64,
        uids: Vec<u32>,
        to_folder: i64,
        remove_source: bool,
    ) -> Result<std::result::Result<CopyOutcome, Refused>>;
    /// Protocol-specific derived data cached per body, one slot per consumer (IMAP
    /// keeps ENVELOPE and BODYSTRUCTURE here so FETCH never re-parses a message).
    /// `None` until put; the slots go with the body.
    async fn body_cache(&self, body_id: i64, consumer: CacheConsumer) -> Result<Option<Vec<u8>>>;
    /// Stores a consumer's derived data for a body; later puts replace it. A body
    /// that is gone meanwhile is quietly not cached.
    async fn put_body_cache(
        &self,
        body_id: i64,
        consumer: CacheConsumer,
        data: Vec<u8>,
    ) -> Result<()>;
    /// A message by its item id (EWS ItemId): its folder and metadata; `NotFound`
    /// when no message has that id (expunged, or moved: a move makes a new item).
    async fn message_by_item_id(&self, item_id: &str) -> Result<(Folder, MessageMeta)> {
        self.messages_by_item_ids(vec![item_id.to_string()])
            .await?
            .pop()
            .flatten()
            .ok_or(StoreError::NotFound("item"))
    }
    /// Messages by item id in the order asked, `None` where no message has the id:
    /// one read for every id of a GetItem.
    async fn messages_by_item_ids(
        &self,
        item_ids: Vec<String>,
    ) -> Result<Vec<Option<(Folder, MessageMeta)>>>;
    /// A folder by its item id (EWS FolderId); `NotFound` when none has it.
    async fn folder_by_item_id(&self, item_id: &str) -> Result<Folder>;
    async fn quota(&self, mailbox: &MailboxId) -> Result<Quota>;
    async fn set_quota(&self, mailbox: &MailboxId, limit_bytes: u64) -> Result<()>;
}

/// The feed kind of a flag change: [`ChangeKind::ReadFlag`] when only `\Seen`
/// differs between the two (normalised) lists.
pub fn flag_change_kind(before: &[String], after: &[String]) -> ChangeKind {
    let other = |l: &[String]| -> Vec<String> {
        let mut v: Vec<String> = l
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Seen"))
            .map(|f| f.to_ascii_lowercase())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    if other(before) == other(after) {
        ChangeKind::ReadFlag
    } else {
        ChangeKind::Flags
    }
}

/// Normalises a flag list: de-duplicated, system flags first, stable order.
pub fn normalize_flags(flags: &[String]) -> Vec<String> {
    let mut v: Vec<String> = flags
        .iter()
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    v.sort_by(|a, b| {
        (!a.starts_with('\\'), a.to_ascii_lowercase())
            .cmp(&(!b.starts_with('\\'), b.to_ascii_lowercase()))
    });
    v.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_keys_are_checked_for_form() {
        assert!(is_change_key(&change_key("i", 42)));
        for bad in ["XXX", "", "1-", "zz-0123456789abcdef", "1-0123"] {
            assert!(!is_change_key(bad), "{bad}");
        }
    }
}
